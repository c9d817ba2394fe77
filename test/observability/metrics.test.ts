import assert from 'node:assert/strict';
import { freePort } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { assignPort, heartbeat, viaProxy } from './helpers';
import { checkMetrics } from './promtool';
import { waitFor } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';
import { metricValue, scrape, waitMetric } from '../support/metrics';

/** Names the issue spells out: each must be exported by a `serve` process (with HELP and TYPE). */
const REQUIRED: Array<[string, string]> = [
  ['switchboard_proxy_requests_total', 'counter'],
  ['switchboard_proxy_request_duration_seconds', 'histogram'],
  ['switchboard_proxy_errors_total', 'counter'],
  ['switchboard_routes', 'gauge'],
  ['switchboard_backends', 'gauge'],
  ['switchboard_assignments', 'gauge'],
  ['switchboard_assignments_without_backend', 'gauge'],
  ['switchboard_lease_expirations_total', 'counter'],
  ['switchboard_self_preservation_active', 'gauge'],
  ['switchboard_selfheal_total', 'counter'],
  ['switchboard_registrations_total', 'counter'],
  ['switchboard_client_versions', 'gauge'],
  ['switchboard_store_up', 'gauge'],
  ['switchboard_route_table_version', 'gauge'],
  ['switchboard_snapshot_age_seconds', 'gauge'],
];

/** A few of Node's default process metrics (prom-client's collectDefaultMetrics). */
const NODE_DEFAULTS = ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds'];

function assertDefaultMetrics(text: string): void {
  for (const name of NODE_DEFAULTS) assert.ok(Number.isFinite(metricValue(text, name)), `default metric ${name} missing`);
}

describe('metrics of a serve process (embedded store)', function () {
  this.timeout(90_000);
  let sb: SwitchboardProcess;
  let ok: Backend;
  let hang: Backend;
  let unregistered: Backend | undefined;
  let healPort: number;
  let deadPort: number;

  before(async () => {
    ok = await startBackend('alpha');
    // Never answers: holds the request until the proxy gives up.
    hang = await startBackend(() => undefined);
    healPort = await freePort();
    deadPort = await freePort();
    sb = await startProcess('serve', {
      env: { SWITCHBOARD_ACCESS_LOG: 'false' },
      config: {
        // A short hold: the tool without a backend below is held, then answered 503 not_running.
        proxy: { responseTimeoutMs: 500, feedPollMs: 200, holdMs: 300 },
        leases: { minTtlSeconds: 1, expiryIntervalMs: 100 },
        // The one port the registry hands out, where `healme` will run without registering.
        ports: { min: healPort, max: healPort },
      },
    });
  });
  after(async () => {
    await sb?.kill('SIGTERM');
    for (const b of [ok, hang, unregistered]) await b?.close();
  });

  it('exports every required metric, with Node defaults, and passes promtool check metrics', async () => {
    const text = await scrape(sb);
    for (const [name, type] of REQUIRED) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `HELP of ${name}`);
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `TYPE of ${name}`);
    }
    assertDefaultMetrics(text);
    assert.equal(metricValue(text, 'switchboard_store_up'), 1);
    assert.equal(metricValue(text, 'switchboard_routes'), 0);
    const buckets = [...text.matchAll(/^switchboard_proxy_request_duration_seconds_bucket\{le="([^"]+)"\}/gm)].map((m) => m[1]);
    assert.equal(buckets[0], '0.0005', 'smallest bucket 0.5 ms');
    assert.ok(buckets.includes('30'), 'a 30 s bucket');
    await checkMetrics(text);
  });

  it('counts registrations by result', async () => {
    assert.equal((await heartbeat(sb, 'alpha', 'a1', { url: ok.url, ttl: 30 })).status, 200);
    assert.equal((await heartbeat(sb, 'alpha', 'a1', { url: ok.url, ttl: 30 })).status, 200);
    assert.equal((await heartbeat(sb, 'alpha', 'a2', { url: 'ftp://127.0.0.1:21' })).status, 400);
    // alpha's url belongs to alpha: another tool registering it is a port conflict.
    assert.equal((await heartbeat(sb, 'beta', 'b1', { url: ok.url })).status, 409);
    const text = await scrape(sb);
    assert.equal(metricValue(text, 'switchboard_registrations_total', { result: 'created' }), 1);
    assert.equal(metricValue(text, 'switchboard_registrations_total', { result: 'renewed' }), 1);
    assert.equal(metricValue(text, 'switchboard_registrations_total', { result: 'rejected' }), 1);
    assert.equal(metricValue(text, 'switchboard_registrations_total', { result: 'conflict' }), 1);
  });

  it('reports the route table: routes, backends by source, assignments, version', async () => {
    const text = await waitMetric(sb, 'switchboard_routes', {}, (v) => v === 1);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered' }), 1);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered' }), 0);
    assert.equal(metricValue(text, 'switchboard_assignments'), 1, 'the registration created its assignment');
    assert.equal(metricValue(text, 'switchboard_assignments_without_backend'), 0);
    assert.ok(metricValue(text, 'switchboard_route_table_version') >= 1);
    assert.ok(metricValue(text, 'switchboard_snapshot_age_seconds') >= 0);
    // Counted from a cache the scrape refreshes in the background (a scrape never waits on a store read).
    await waitMetric(sb, 'switchboard_client_versions', { version: 'unknown' }, (v) => v === 1);
  });

  it('counts proxied requests by code, with their durations', async () => {
    const before = await scrape(sb);
    const count0 = metricValue(before, 'switchboard_proxy_request_duration_seconds_count');
    for (let i = 0; i < 3; i++) assert.equal(await viaProxy(sb, '/alpha/x'), 200);
    const text = await waitMetric(sb, 'switchboard_proxy_requests_total', { code: '200' }, (v) => v >= 3);
    assert.equal(metricValue(text, 'switchboard_proxy_request_duration_seconds_count'), count0 + 3);
    assert.ok(metricValue(text, 'switchboard_proxy_request_duration_seconds_sum') > 0);
  });

  it('counts each kind of proxy error: no_route, not_running, refused, timeout', async () => {
    // no_route: a tool nobody knows.
    assert.equal(await viaProxy(sb, '/nobody-knows-me/'), 404);
    // not_running: a tool whose only backend deregistered, leaving its assignment on a closed port.
    assert.equal((await heartbeat(sb, 'idle', 'i1', { url: `http://127.0.0.1:${deadPort}` })).status, 200);
    const del = await fetch(`${sb.control}/v1/tools/idle/backends/i1`, { method: 'DELETE', headers: { authorization: `Bearer ${sb.adminToken}` } });
    assert.equal(del.status, 204);
    await waitMetric(sb, 'switchboard_assignments_without_backend', {}, (v) => v === 1);
    assert.equal(await viaProxy(sb, '/idle/'), 503);
    const deadPort2 = await freePort();
    // refused: a registered backend whose port is closed.
    assert.equal((await heartbeat(sb, 'gone', 'g1', { url: `http://127.0.0.1:${deadPort2}` })).status, 200);
    await waitMetric(sb, 'switchboard_routes', {}, (v) => v === 2);
    assert.equal(await viaProxy(sb, '/gone/'), 502);
    // timeout: a backend that never answers (responseTimeoutMs 500).
    assert.equal((await heartbeat(sb, 'slow', 's1', { url: hang.url })).status, 200);
    await waitMetric(sb, 'switchboard_routes', {}, (v) => v === 3);
    assert.equal(await viaProxy(sb, '/slow/'), 504);

    const text = await waitMetric(sb, 'switchboard_proxy_errors_total', { kind: 'timeout' }, (v) => v >= 1);
    for (const kind of ['no_route', 'not_running', 'refused', 'timeout']) {
      assert.ok(metricValue(text, 'switchboard_proxy_errors_total', { kind }) >= 1, `errors_total{kind="${kind}"}`);
    }
    for (const code of ['404', '503', '502', '504']) {
      assert.ok(metricValue(text, 'switchboard_proxy_requests_total', { code }) >= 1, `requests_total{code="${code}"}`);
    }
    await checkMetrics(text);
  });

  it('counts self-heals and names the healed tool', async () => {
    const before = await scrape(sb);
    assert.ok(!/tool="healme"/.test(before));
    assert.equal((await assignPort(sb, 'healme')).status, 200);
    // The proxy learns the assignment through the change feed: wait for it, or the request is a 404.
    await waitMetric(sb, 'switchboard_assignments', {}, (v) => v === metricValue(before, 'switchboard_assignments') + 1);
    // healme starts on its assigned port and never registers: the request heals it. (Started after the
    // assignment: the registry hands out no port that something listens on.)
    unregistered = await startBackend('healme', { port: healPort });
    assert.equal(await viaProxy(sb, '/healme/'), 200);
    const text = await waitMetric(sb, 'switchboard_discovered_backends', { tool: 'healme' }, (v) => v === 1);
    assert.equal(metricValue(text, 'switchboard_selfheal_total', { trigger: 'request' }), 1);
    assert.equal(metricValue(text, 'switchboard_backends', { source: 'discovered' }), 1);
    assert.equal(metricValue(text, 'switchboard_routes'), 4, 'alpha, gone, slow and healme');
    await checkMetrics(text);
  });

  it('counts lease expirations', async () => {
    const before = metricValue(await scrape(sb), 'switchboard_lease_expirations_total');
    const b = await startBackend('brief');
    try {
      assert.equal((await heartbeat(sb, 'brief', 'x1', { url: b.url, ttl: 1 })).status, 200);
      // Down before its lease lapses: a server still answering on its (heartbeat-created) assignment would
      // rightly be healed by the reconciler, and the route would not go.
      await b.close();
      await waitMetric(sb, 'switchboard_lease_expirations_total', {}, (v) => v >= before + 1);
      await waitMetric(sb, 'switchboard_routes', {}, (v) => v === 4, 'the expired route gone from the table');
    } finally {
      await b.close();
    }
  });
});

describe('metrics.perToolLabels', function () {
  this.timeout(60_000);
  let sb: SwitchboardProcess;
  let ok: Backend;

  before(async () => {
    ok = await startBackend('alpha');
    sb = await startProcess('serve', { env: { SWITCHBOARD_ACCESS_LOG: 'false' }, config: { metrics: { perToolLabels: true }, proxy: { feedPollMs: 200 } } });
  });
  after(async () => {
    await sb?.kill('SIGTERM');
    await ok?.close();
  });

  it('adds a tool label to requests and durations, only for tools in the table', async () => {
    assert.equal((await heartbeat(sb, 'alpha', 'a1', { url: ok.url })).status, 200);
    await waitFor('alpha routed', async () => (await viaProxy(sb, '/alpha/')) === 200);
    assert.equal(await viaProxy(sb, '/alpha/again'), 200);
    // A scan of made-up names must not create a series per name.
    for (const name of ['admin', 'wp-login', 'x'.repeat(40)]) assert.equal(await viaProxy(sb, `/${name}/`), 404);
    const text = await scrape(sb);
    assert.ok(metricValue(text, 'switchboard_proxy_requests_total', { code: '200', tool: 'alpha' }) >= 2);
    assert.equal(metricValue(text, 'switchboard_proxy_requests_total', { code: '404', tool: '' }), 3);
    assert.doesNotMatch(text, /tool="(admin|wp-login)"/);
    assert.ok(metricValue(text, 'switchboard_proxy_request_duration_seconds_count', { tool: 'alpha' }) >= 2);
    await checkMetrics(text);
  });

  it('is off by default: requests_total has only the code label', async () => {
    const plain = await startProcess('serve', { env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
    try {
      assert.equal(await viaProxy(plain, '/nobody/'), 404);
      const text = await scrape(plain);
      assert.match(text, /^switchboard_proxy_requests_total\{code="404"\} 1$/m);
    } finally {
      await plain.kill('SIGTERM');
    }
  });
});
