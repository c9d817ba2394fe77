import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promtool } from './promtool';

const DIR = path.join(__dirname, '..', '..', 'config', 'prometheus');
const RULES = path.join(DIR, 'alerts.yml');
const TESTS = path.join(DIR, 'alerts.test.yml');

/** The rules of alerts.yml as blocks of text, one per `- alert:` (the file is ours; its layout is known). */
function ruleBlocks(): Map<string, string> {
  const text = readFileSync(RULES, 'utf8');
  const blocks = new Map<string, string>();
  const parts = text.split(/^\s*- alert: /m).slice(1);
  for (const part of parts) {
    const name = part.split('\n')[0].trim();
    blocks.set(name, part);
  }
  return blocks;
}

describe('alert rules (config/prometheus/alerts.yml)', function () {
  this.timeout(30_000);

  it('pass promtool check rules', async () => {
    const r = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', RULES]);
    assert.equal(r.code, 0, `promtool check rules failed:\n${r.stdout}\n${r.stderr}`);
  });

  it('pass their unit tests (promtool test rules)', async () => {
    const r = await promtool(['test', 'rules', TESTS], undefined, DIR);
    assert.equal(r.code, 0, `promtool test rules failed:\n${r.stdout}\n${r.stderr}`);
  });

  it('cover what the issue asks for, each with severity, summary and description', () => {
    const blocks = ruleBlocks();
    const wanted: Array<[string, RegExp]> = [
      ['SwitchboardRoutesDropped', /switchboard_routes\b/],
      ['SwitchboardAssignmentsWithoutBackend', /switchboard_assignments_without_backend\b/],
      ['SwitchboardSelfHealing', /switchboard_selfheal_total\b/],
      ['SwitchboardSelfPreservation', /switchboard_self_preservation_active\b/],
      ['SwitchboardStoreDown', /switchboard_store_up\b/],
      ['SwitchboardProxy5xxRatio', /switchboard_proxy_requests_total\{code=~"5\.\.", code!~"501\|505"\}/],
      ['SwitchboardToolsLost', /max without \(instance\) \(switchboard_tools_lost\) > 0/],
      ['SwitchboardHeartbeatsRefused', /switchboard_heartbeat_refused_seconds\)\s+> max without \(instance\) \(switchboard_heartbeat_refused_ttl_seconds\)/],
      ['SwitchboardToolCrashLooping', /increase\(switchboard_backend_restarts\[15m\]\)\) > 3/],
      ['SwitchboardTlsCertificateExpiring', /min without \(instance\) \(switchboard_tls_certificate_expiry_seconds\) < 14 \* 86400/],
      ['SwitchboardTlsCertificateExpiryImminent', /min without \(instance\) \(switchboard_tls_certificate_expiry_seconds\) < 3 \* 86400/],
      ['SwitchboardAtCapacity', /switchboard_event_loop_delay_seconds\{stat="p99"\}\) > 0\.1/],
    ];
    for (const [name, expr] of wanted) {
      const b = blocks.get(name);
      assert.ok(b, `rule ${name} missing`);
      assert.match(b, expr, `${name} watches the wrong metric`);
    }
    for (const [name, b] of blocks) {
      assert.match(b, /^\s+severity: (critical|warning)$/m, `${name}: labels.severity`);
      assert.match(b, /^\s+summary: \S/m, `${name}: annotations.summary`);
      assert.match(b, /^\s+description: \S/m, `${name}: annotations.description`);
    }
  });

  it('have unit tests where each rule fires and where it does not', () => {
    const lines = readFileSync(TESTS, 'utf8').split('\n');
    const fires = new Set<string>();
    const silent = new Set<string>();
    lines.forEach((line, i) => {
      const m = /^\s*alertname: (\S+)/.exec(line);
      if (!m) return;
      const next = lines[i + 1].trim();
      if (next === 'exp_alerts: []') silent.add(m[1]);
      else if (next === 'exp_alerts:') fires.add(m[1]);
    });
    for (const name of ruleBlocks().keys()) {
      assert.ok(fires.has(name), `no test where ${name} fires`);
      assert.ok(silent.has(name), `no test where ${name} stays silent`);
    }
    assert.match(readFileSync(TESTS, 'utf8'), /original incident/, 'a series reproducing the original incident');
  });
});
