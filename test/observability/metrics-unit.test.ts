import assert from 'node:assert/strict';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { DISCOVERED_TOOLS_LIMIT, Metrics, type TableSource } from '../../src/metrics';
import { RouteTable } from '../../src/table/route-table';
import type { Assignment, Backend } from '../../src/registry/types';
import { checkMetrics } from './promtool';
import { metricValue } from '../support/metrics';
import { sleep, waitFor } from '../support/wait';

function backend(tool: string, id: string, port: number, source: Backend['source'] = 'registered'): Backend {
  return { tool, id, url: `http://127.0.0.1:${port}`, source, registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 };
}

function assignment(tool: string, port: number): Assignment {
  return { tool, host: '127.0.0.1', port, createdAt: 1 };
}

function source(table: RouteTable | null, storeUp = true, confirmedAt = Date.now(), lost: readonly string[] = []): TableSource {
  return { current: () => table, storeUp, confirmedAt, lostTools: () => lost };
}

type Json = MetricObjectWithValues<MetricValue<string>>[];

describe('Metrics: route-table gauges', () => {
  const table = RouteTable.fromSnapshot({
    epoch: 'e1',
    version: 42,
    backends: [backend('alpha', 'a1', 20001), backend('alpha', 'a2', 20002), backend('beta', 'b1', 20003, 'discovered')],
    assignments: [assignment('alpha', 20001), assignment('beta', 20003), assignment('idle', 20004), assignment('idle2', 20005)],
  });

  it('are absent, not 0, in a process without a table', async () => {
    const m = new Metrics();
    const text = await m.registry.metrics();
    for (const name of ['switchboard_routes', 'switchboard_store_up', 'switchboard_assignments', 'switchboard_route_table_version', 'switchboard_snapshot_age_seconds']) {
      assert.ok(Number.isNaN(metricValue(text, name)), `${name} should have no sample`);
    }
    await checkMetrics(text);
  });

  it('are read from the table source at scrape time', async () => {
    const m = new Metrics();
    m.observeTable(source(table));
    const text = await m.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_routes'), 2);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered' }), 2);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered' }), 1);
    assert.equal(metricValue(text, 'switchboard_discovered_backends', { tool: 'beta' }), 1);
    assert.ok(Number.isNaN(metricValue(text, 'switchboard_discovered_backends', { tool: 'alpha' })));
    assert.equal(metricValue(text, 'switchboard_assignments'), 4);
    assert.equal(metricValue(text, 'switchboard_assignments_without_backend'), 2);
    assert.equal(metricValue(text, 'switchboard_route_table_version'), 42);
    assert.equal(metricValue(text, 'switchboard_store_up'), 1);
    await checkMetrics(text);
  });

  it('count held backends apart: switchboard_routes only tools with a live one, switchboard_backends{source,state}', async () => {
    const held = (b: Backend): Backend => ({ ...b, held: true });
    const withHeld = RouteTable.fromSnapshot({
      epoch: 'e1',
      version: 43,
      backends: [
        backend('alpha', 'a1', 20001),
        held(backend('alpha', 'a2', 20002)),
        held(backend('dead', 'd1', 20006)),
        held(backend('dead2', 'd1', 20007)),
        held(backend('beta', 'b1', 20003, 'discovered')),
        backend('gamma', 'g1', 20008, 'discovered'),
      ],
      assignments: [assignment('alpha', 20001), assignment('dead', 20006), assignment('beta', 20003), assignment('idle', 20004)],
    });
    const m = new Metrics();
    m.observeTable(source(withHeld));
    const text = await m.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_routes'), 2, 'alpha and gamma; dead, dead2 and beta have only held backends');
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered', state: 'live' }), 1);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered', state: 'held' }), 3);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered', state: 'live' }), 1);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered', state: 'held' }), 1);
    // A query of the old label alone sums the states: every backend of that source, as before.
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered' }), 4);
    assert.equal(text.match(/^switchboard_backends\{/gm)?.length, 4, 'one series per source and state');
    // dead's and beta's assignments have no live backend; idle has none at all.
    assert.equal(metricValue(text, 'switchboard_assignments_without_backend'), 3);
    await checkMetrics(text);
  });

  it('follow the source: store down, snapshot age, a table swapped for an empty one', async () => {
    let current: RouteTable | null = table;
    const src = { current: () => current, storeUp: true, confirmedAt: Date.now() - 90_000, lostTools: () => [] };
    const m = new Metrics();
    m.observeTable(src);
    let text = await m.registry.metrics();
    assert.ok(metricValue(text, 'switchboard_snapshot_age_seconds') >= 90);
    src.storeUp = false;
    current = RouteTable.empty();
    text = await m.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_store_up'), 0);
    assert.equal(metricValue(text, 'switchboard_routes'), 0);
    assert.ok(Number.isNaN(metricValue(text, 'switchboard_discovered_backends', { tool: 'beta' })), 'a tool no longer discovered has no series');
  });

  it(`name at most ${DISCOVERED_TOOLS_LIMIT} discovered tools`, async () => {
    const many = Array.from({ length: DISCOVERED_TOOLS_LIMIT + 50 }, (_, i) => backend(`tool-${String(i).padStart(4, '0')}`, 'd', 21000 + i, 'discovered'));
    const m = new Metrics();
    m.observeTable(source(RouteTable.fromSnapshot({ epoch: 'e', version: 1, backends: many, assignments: [] })));
    const text = await m.registry.metrics();
    assert.equal(text.match(/^switchboard_discovered_backends\{/gm)?.length, DISCOVERED_TOOLS_LIMIT);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered' }), DISCOVERED_TOOLS_LIMIT + 50, 'the total still counts all');
  });

  it('aggregate over --workers without multiplying the table: counters sum, table gauges take the worst', async () => {
    const behind = RouteTable.fromSnapshot({ epoch: 'e1', version: 40, backends: [backend('alpha', 'a1', 20001)], assignments: [assignment('alpha', 20001)] });
    const primary = new Metrics(); // the bare primary of `proxy --workers`: no table
    const w1 = new Metrics();
    const w2 = new Metrics();
    w1.observeTable(source(table));
    w2.observeTable(source(behind, false));
    w1.proxyRequests.labels('200').inc(3);
    w2.proxyRequests.labels('200').inc(4);
    const json = await Promise.all([primary, w1, w2].map(async (m) => (await m.registry.getMetricsAsJSON()) as Json));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    assert.equal(metricValue(text, 'switchboard_proxy_requests_total', { code: '200' }), 7);
    assert.equal(metricValue(text, 'switchboard_routes'), 1, 'fewest routes of any worker, not 2 + 1');
    assert.equal(metricValue(text, 'switchboard_store_up'), 0, 'down in any worker');
    assert.equal(metricValue(text, 'switchboard_route_table_version'), 40);
    assert.equal(metricValue(text, 'switchboard_assignments_without_backend'), 2);
    await checkMetrics(text);
  });
});

describe('Metrics: labelled counters start at 0', () => {
  it('a fresh Metrics exports every known label value of each closed-set counter at 0', async () => {
    const text = await new Metrics().registry.metrics();
    const expected: Array<[string, string, string[]]> = [
      ['switchboard_selfheal_total', 'trigger', ['request', 'reconcile']],
      ['switchboard_registrations_total', 'result', ['created', 'renewed', 'rejected', 'conflict', 'unavailable']],
      ['switchboard_proxy_errors_total', 'kind', ['no_route', 'not_running', 'refused', 'reset', 'timeout', 'bad_gateway', 'not_implemented', 'version_not_supported', 'loop_detected', 'request_timeout', 'too_many_connections', 'assigned_elsewhere']],
      ['switchboard_auth_failures_total', 'reason', ['missing', 'malformed', 'invalid']],
      ['switchboard_control_refused_total', 'reason', ['proxied', 'host']],
      ['switchboard_proxy_http2_sessions_closed_total', 'reason', ['resets', 'control_frames', 'invalid_frames', 'flood', 'continuation', 'protocol_error']],
    ];
    for (const [name, label, values] of expected) {
      for (const value of values) assert.equal(metricValue(text, name, { [label]: value }), 0, `${name}{${label}="${value}"}`);
    }
    assert.equal(metricValue(text, 'switchboard_ports_occupied_total'), 0);
    await checkMetrics(text);
  });
});

describe('Metrics: lost tools', () => {
  const table = RouteTable.fromSnapshot({ epoch: 'e2', version: 1, backends: [], assignments: [] });

  it('count the tools the source reports lost and name them', async () => {
    const m = new Metrics();
    m.observeTable(source(table, true, Date.now(), ['alpha', 'beta']));
    const text = await m.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_tools_lost'), 2);
    assert.equal(metricValue(text, 'switchboard_lost_tool', { tool: 'alpha' }), 1);
    assert.equal(metricValue(text, 'switchboard_lost_tool', { tool: 'beta' }), 1);
    await checkMetrics(text);
  });

  it(`count all, name at most ${DISCOVERED_TOOLS_LIMIT}; absent in a process without a table source`, async () => {
    const names = Array.from({ length: DISCOVERED_TOOLS_LIMIT + 5 }, (_, i) => `t${String(i).padStart(4, '0')}`);
    const m = new Metrics();
    m.observeTable(source(table, true, Date.now(), names));
    const text = await m.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_tools_lost'), DISCOVERED_TOOLS_LIMIT + 5);
    assert.equal(text.match(/^switchboard_lost_tool\{/gm)?.length, DISCOVERED_TOOLS_LIMIT);
    assert.ok(Number.isNaN(metricValue(await new Metrics().registry.metrics(), 'switchboard_tools_lost')));
  });

  it('aggregate over --workers as the highest count, not the sum', async () => {
    const w1 = new Metrics();
    const w2 = new Metrics();
    w1.observeTable(source(table, true, Date.now(), ['alpha', 'beta']));
    w2.observeTable(source(table, true, Date.now(), ['alpha', 'beta']));
    const json = await Promise.all([w1, w2].map(async (m) => (await m.registry.getMetricsAsJSON()) as Json));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    assert.equal(metricValue(text, 'switchboard_tools_lost'), 2);
    assert.equal(metricValue(text, 'switchboard_lost_tool', { tool: 'beta' }), 1);
  });
});

describe('Metrics: event-loop delay', () => {
  it('report the delay of the last complete window (p50, p99, max), absent before one has ended, and the worst worker', async () => {
    const m = new Metrics({ defaultMetrics: true, loopDelayWindowMs: 100 });
    assert.ok(Number.isNaN(metricValue(await m.registry.metrics(), 'switchboard_event_loop_delay_seconds', { stat: 'max' })), 'no window has ended yet');
    // The loop held for 300 ms in one go, once the monitor's timer runs: the window it lands in has a delay of about that much.
    await sleep(50);
    const until = Date.now() + 300;
    while (Date.now() < until) {
      /* holding the loop */
    }
    const delay = (json: Json, stat: string) => json.find((x) => x.name === 'switchboard_event_loop_delay_seconds')?.values.find((v) => v.labels.stat === stat)?.value ?? NaN;
    const held = await waitFor('a window with the held loop in it', async () => {
      const json = (await m.registry.getMetricsAsJSON()) as Json;
      return delay(json, 'max') >= 0.2 && json;
    });
    for (const stat of ['p50', 'p99']) assert.ok(delay(held, stat) >= 0, stat);
    // Another worker of `--workers`, its loop idle.
    const idle = held.map((x) => (x.name === 'switchboard_event_loop_delay_seconds' ? { ...x, values: x.values.map((v) => ({ ...v, value: 0.001 })) } : x));
    const text = await AggregatorRegistry.aggregate([idle, held]).metrics();
    assert.equal(metricValue(text, 'switchboard_event_loop_delay_seconds', { stat: 'max' }), delay(held, 'max'), 'the worst process, not a sum or an average');
    await checkMetrics(text);
  });
});
