import assert from 'node:assert/strict';
import { startInProcess, type InProcess } from '../support/in-process';
import { metricValue, scrape } from '../support/metrics';
import { certDir, httpsRequest, makePair, writePair } from '../support/certificates';
import { checkMetrics, ruleAnnotations, testRecorded } from './promtool';

const DAY = 86_400;
const METRIC = 'switchboard_tls_certificate_expiry_seconds';

/** Prometheus's humanizeDuration for a value of at least a second, as the rules' templates print it. */
function humanizeDuration(v: number): string {
  const s = Math.trunc(v);
  const [days, hours, minutes, seconds] = [Math.floor(s / DAY), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60];
  if (days) return `${days}d ${hours}h ${minutes}m ${seconds}s`;
  if (hours) return `${hours}h ${minutes}m ${seconds}s`;
  return minutes ? `${minutes}m ${seconds}s` : `${s}s`;
}

/** The alert `alert` as promtool must see it for certificate `name` expiring in `seconds`. */
function expected(alert: string, severity: string, name: string, seconds: number): string {
  const { summary, description } = ruleAnnotations(alert);
  const fill = (t: string) => t.replace(/\{\{ \$labels\.name \}\}/g, name).replace(/\{\{ \$value \| humanizeDuration \}\}/g, humanizeDuration(seconds));
  return [
    `          - exp_labels: { severity: ${severity}, job: switchboard, name: ${name} }`,
    `            exp_annotations: { summary: ${JSON.stringify(fill(summary))}, description: ${JSON.stringify(fill(description))} }`,
  ].join('\n');
}

describe('switchboard_tls_certificate_expiry_seconds', function () {
  this.timeout(30_000);
  let sb: InProcess;

  before(async () => {
    const dir = certDir();
    const soon = await makePair(['soon.example.test'], 2);
    writePair(dir, 'soon', soon);
    writePair(dir, 'later', await makePair(['later.example.test'], 10));
    writePair(dir, 'fine', await makePair(['fine.example.test'], 60));
    sb = await startInProcess({ adminToken: 'tls-metrics-admin-token-0123456789', overrides: { proxy: { tls: { port: 0, certDir: dir } } } });
    assert.equal((await httpsRequest(sb.tlsPort!, '/', { servername: 'soon.example.test', ca: soon.cert })).fingerprint, soon.fingerprint);
  });
  after(() => sb.stop());

  it('counts down to each certificate\'s end by name, and the alert rules warn at 14 days and page at 3 (promtool, on the scraped values)', async () => {
    const text = await scrape(sb);
    await checkMetrics(text);
    const left = Object.fromEntries(['soon', 'later', 'fine'].map((name) => [name, metricValue(text, METRIC, { name })]));
    assert.ok(left.soon > 1 * DAY && left.soon <= 2 * DAY, `soon: ${left.soon}`);
    assert.ok(left.later > 9 * DAY && left.later <= 10 * DAY, `later: ${left.later}`);
    assert.ok(left.fine > 59 * DAY && left.fine <= 60 * DAY, `fine: ${left.fine}`);
    // The scraped values as series, held for 5 minutes: what each rule does with them.
    const tests = [
      'rule_files: [alerts.yml]',
      'evaluation_interval: 1m',
      'tests:',
      '  - name: recorded from test/observability/tls-metrics.test.ts',
      '    interval: 1m',
      '    input_series:',
      ...Object.entries(left).map(([name, v]) => `      - series: '${METRIC}{instance="proxy", job="switchboard", name="${name}"}'\n        values: '${v}x5'`),
      '    alert_rule_test:',
      '      - eval_time: 5m',
      '        alertname: SwitchboardTlsCertificateExpiring',
      '        exp_alerts:',
      expected('SwitchboardTlsCertificateExpiring', 'warning', 'later', left.later),
      expected('SwitchboardTlsCertificateExpiring', 'warning', 'soon', left.soon),
      '      - eval_time: 5m',
      '        alertname: SwitchboardTlsCertificateExpiryImminent',
      '        exp_alerts:',
      expected('SwitchboardTlsCertificateExpiryImminent', 'critical', 'soon', left.soon),
      '',
    ].join('\n');
    const r = await testRecorded(tests);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${tests}`);
  });

  it('is absent from a process without HTTPS', async () => {
    const plain = await startInProcess({ adminToken: 'tls-metrics-admin-token-0123456789' });
    try {
      assert.ok(Number.isNaN(metricValue(await scrape(plain), METRIC)));
    } finally {
      await plain.stop();
    }
  });
});
