import { ruleAnnotations } from '../observability/promtool';
import { type SwitchboardProcess } from '../support/process';
import { sleep } from '../support/wait';
import { metricValue, scrape } from '../support/metrics';

/** One scrape of both processes of the replay: what the alert rules of the self-heal watch. */
export interface Scrape {
  /** switchboard_routes of each process (serve, then the proxy-only one). */
  routes: [number, number];
  /** switchboard_selfheal_total{trigger} of serve (the proxy-only process heals nothing). */
  heals: { request: number; reconcile: number };
  /** switchboard_discovered_backends{tool} of each process; NaN where the series is absent. */
  discovered: [Map<string, number>, Map<string, number>];
  assignmentsWithoutBackend: [number, number];
  selfPreservation: number;
}

const INSTANCES = ['serve', 'proxy'] as const;


/** Both processes' /metrics read as a scrape would, every `everyMs` until stopped (at most `max` scrapes). */
export class SeriesRecorder {
  readonly scrapes: Scrape[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(processes: [SwitchboardProcess, SwitchboardProcess], tools: string[], everyMs: number, max: number) {
    this.loop = (async () => {
      for (let i = 0; i < max && this.running; i++) {
        const texts = await Promise.all(processes.map(scrape));
        const v = (t: string, name: string, labels: Record<string, string> = {}) => metricValue(t, name, labels);
        this.scrapes.push({
          routes: [v(texts[0], 'switchboard_routes'), v(texts[1], 'switchboard_routes')],
          heals: { request: v(texts[0], 'switchboard_selfheal_total', { trigger: 'request' }), reconcile: v(texts[0], 'switchboard_selfheal_total', { trigger: 'reconcile' }) },
          discovered: [0, 1].map((p) => new Map(tools.map((t) => [t, v(texts[p], 'switchboard_discovered_backends', { tool: t })]))) as Scrape['discovered'],
          assignmentsWithoutBackend: [v(texts[0], 'switchboard_assignments_without_backend'), v(texts[1], 'switchboard_assignments_without_backend')],
          selfPreservation: v(texts[0], 'switchboard_self_preservation_active'),
        });
        await sleep(everyMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

function seriesLine(name: string, labels: Record<string, string>, values: number[]): string {
  const l = Object.entries({ ...labels, job: 'switchboard' })
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  return `      - series: '${name}{${l}}'\n        values: '${values.map((x) => (Number.isNaN(x) ? '_' : String(x))).join(' ')}'`;
}

/**
 * A promtool test of the real rules on the recorded scrapes, one a minute (the run is compressed, so a rule's
 * `for` and window are shorter in real time than in production: quiet rules are held to a stricter test,
 * firing ones to a looser one). `healedAt` is the first scrape at which every heal was counted.
 * SwitchboardSelfHealing's annotations carry increase()'s extrapolated count and the discovered tools in
 * no fixed order, so it is checked through ALERTS; SwitchboardToolNotRegistering with its annotations.
 */
export function replayAlertTests(scrapes: Scrape[], tools: string[], healedAt: number): string {
  const last = scrapes.length - 1;
  const series = [
    ...INSTANCES.map((inst, p) => seriesLine('switchboard_routes', { instance: inst }, scrapes.map((s) => s.routes[p]))),
    ...(['request', 'reconcile'] as const).map((trigger) => seriesLine('switchboard_selfheal_total', { instance: 'serve', trigger }, scrapes.map((s) => s.heals[trigger]))),
    ...INSTANCES.flatMap((inst, p) => tools.map((tool) => seriesLine('switchboard_discovered_backends', { instance: inst, tool }, scrapes.map((s) => s.discovered[p].get(tool)!)))),
  ];
  const notRegistering = ruleAnnotations('SwitchboardToolNotRegistering');
  const alertsOf = (tool: string) => {
    const fill = (s: string) => s.replace(/\{\{ \$labels\.tool \}\}/g, tool).replace(/\{\{ \$value \}\}/g, '1');
    return [
      `          - exp_labels: { severity: warning, job: switchboard, tool: ${tool} }`,
      `            exp_annotations: { summary: ${JSON.stringify(fill(notRegistering.summary))}, description: ${JSON.stringify(fill(notRegistering.description))} }`,
    ];
  };
  return [
    'rule_files: [alerts.yml]',
    'evaluation_interval: 1m',
    'tests:',
    '  - name: recorded from test/incident/replay.test.ts',
    '    interval: 1m',
    '    input_series:',
    ...series,
    '    alert_rule_test:',
    '      - eval_time: 0m',
    '        alertname: SwitchboardToolNotRegistering',
    '        exp_alerts: []',
    `      - eval_time: ${last}m`,
    '        alertname: SwitchboardToolNotRegistering',
    '        exp_alerts:',
    ...tools.flatMap(alertsOf),
    '    promql_expr_test:',
    '      - expr: ALERTS{alertname="SwitchboardSelfHealing", alertstate="firing"}',
    `        eval_time: ${healedAt}m`,
    '        exp_samples:',
    `          - labels: 'ALERTS{alertname="SwitchboardSelfHealing", alertstate="firing", job="switchboard", severity="warning"}'`,
    '            value: 1',
    '',
  ].join('\n');
}

/**
 * SwitchboardRoutesDropped on the same scrapes at their real pace: tools whose leases lapsed while their
 * servers were restarted are not live routes for a few seconds (held by self-preservation, or expired) until
 * discovery heals them. In the compressed series above a few seconds would read as minutes; a Prometheus
 * scraping at this pace sees the dip for what it is, and the rule (`for: 1m`) must stay quiet at every scrape.
 */
export function replayRoutesTests(scrapes: Scrape[], everyMs: number): string {
  const series = INSTANCES.map((inst, p) => seriesLine('switchboard_routes', { instance: inst }, scrapes.map((s) => s.routes[p])));
  const quiet = scrapes.flatMap((_, i) => [`      - eval_time: ${i * everyMs}ms`, '        alertname: SwitchboardRoutesDropped', '        exp_alerts: []']);
  return [
    'rule_files: [alerts.yml]',
    `evaluation_interval: ${everyMs}ms`,
    'tests:',
    '  - name: recorded from test/incident/replay.test.ts, at the pace it was scraped',
    `    interval: ${everyMs}ms`,
    '    input_series:',
    ...series,
    '    alert_rule_test:',
    ...quiet,
    '',
  ].join('\n');
}
