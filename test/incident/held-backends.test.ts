import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { RedisServer } from '../support/redis-server';
import { heartbeat } from '../observability/helpers';
import { waitFor, sleep } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';
import { metricValue, scrape, waitMetric } from '../support/metrics';

// The run, on real processes: a `serve` process (registry and proxy) and a proxy-only process on a
// real Redis, 20 tools heartbeating with a short TTL, each with a real HTTP server. 10 servers are killed
// and their heartbeats stop at once: too many leases lapse together, so self-preservation holds them
// back. Before, held leases counted as live routes (switchboard_routes 15 of 20 while half the tools were
// dead) and their requests got 502. Now held backends are marked: routes show the 10 live tools, and every
// request to a dead tool gets the 503 "not running" page on both proxies.

const N = 20;
const DEAD = 10;
const TTL = 2;
/** Requests to each dead tool through each proxy once self-preservation holds them. */
const REQUESTS = 5;

interface Tool {
  name: string;
  server: Backend;
  alive: boolean;
}

async function statusAndCode(base: string, tool: string): Promise<string> {
  const res = await fetch(`${base}/${tool}/`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status === 200) return '200';
  try {
    return `${res.status} ${(JSON.parse(text) as { error: { code: string } }).error.code}`;
  } catch {
    return `${res.status} ${text.slice(0, 60)}`;
  }
}

describe('self-preservation hides no dead backend: 20 tools on a real Redis, 10 killed', function () {
  this.timeout(120_000);
  const redis = new RedisServer();
  let serve: SwitchboardProcess;
  let proxy: SwitchboardProcess;
  const tools: Tool[] = [];
  let beating = true;
  let beats: Promise<void> | null = null;

  before(async () => {
    await redis.start();
    const env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' };
    const config = {
      redis: { keyPrefix: 'held:' },
      // Engages once more than 2 of 20 leases lapse; the hard cap (30 x TTL) stays far off during the test.
      leases: { minTtlSeconds: 1, defaultTtlSeconds: TTL, expiryIntervalMs: 200, selfPreservation: { threshold: 0.1, minFleet: 10, windowSeconds: 60, hardCapMultiplier: 30 } },
      // A dead tool's requests are held (proxy.holdMs) before the 503 page, as for a tool without a backend.
      proxy: { feedPollMs: 200, holdMs: 200 },
    };
    serve = await startProcess('serve', { env, config });
    proxy = await startProcess('proxy', { env: { ...env, SWITCHBOARD_REGISTRY: serve.control }, config });
    for (let i = 0; i < N; i++) {
      const name = `tool${String(i).padStart(2, '0')}`;
      tools.push({ name, server: await startBackend(name), alive: true });
    }
    // Every tool heartbeats at TTL / 4, all in one batch: the dead ones' leases lapse together.
    const beatAll = async () => {
      const rs = await Promise.all(tools.filter((t) => t.alive).map((t) => heartbeat(serve, t.name, 'a', { url: t.server.url, ttl: TTL })));
      for (const r of rs) assert.equal(r.status, 200);
    };
    await beatAll();
    beats = (async () => {
      for (let i = 0; i < 1000 && beating; i++) {
        await sleep((TTL * 1000) / 4);
        if (beating) await beatAll().catch(() => undefined);
      }
    })();
    for (const p of [serve, proxy]) await waitMetric(p, 'switchboard_routes', {}, (v) => v === N, 'every tool routed');
  });

  after(async () => {
    beating = false;
    await beats;
    await Promise.all(tools.map((t) => t.server.close().catch(() => undefined)));
    await proxy?.kill();
    await serve?.kill();
    await redis.stop();
  });

  it('counts held backends apart and answers 503 not running, never 502, for every dead tool', async () => {
    for (const t of tools.slice(0, DEAD)) {
      t.alive = false;
      await t.server.close();
    }
    await waitMetric(serve, 'switchboard_self_preservation_active', {}, (v) => v === 1, 'self-preservation engaged');
    const count = (event: string) => serve.output().split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;
    await waitFor('every dead lease held or expired', async () => count('lease.held') + count('lease.expired') >= DEAD, 10_000, 50);
    const expired = count('lease.expired');
    const held = count('lease.held');
    assert.ok(held >= 1, 'self-preservation held leases back');
    assert.equal(held + expired, DEAD, `every dead tool's lease lapsed once: held ${held}, expired ${expired}`);

    const live = tools.filter((t) => t.alive).map((t) => t.name);
    for (const p of [serve, proxy]) {
      const text = await waitMetric(p, 'switchboard_routes', {}, (v) => v === N - DEAD, 'only the live tools routed');
      assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered', state: 'live' }), N - DEAD);
      assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered', state: 'held' }), held);
      assert.equal(metricValue(text, 'switchboard_assignments_without_backend'), DEAD);
      const answers = new Map<string, number>();
      for (const t of tools.slice(0, DEAD)) {
        for (let i = 0; i < REQUESTS; i++) {
          const a = await statusAndCode(p.proxy, t.name);
          answers.set(a, (answers.get(a) ?? 0) + 1);
        }
      }
      assert.deepEqual([...answers], [['503 not_running', DEAD * REQUESTS]], `dead tools through ${p.proxy}`);
      for (const name of live) assert.equal(await statusAndCode(p.proxy, name), '200', name);
      const after = await scrape(p);
      assert.equal(metricValue(after, 'switchboard_proxy_errors_total', { kind: 'refused' }), 0, 'no refusal counted as a broken backend');
      // No 502 was ever answered: its series is absent (NaN) or 0.
      assert.equal(metricValue(after, 'switchboard_proxy_requests_total', { code: '502' }) || 0, 0);
    }
    // Still held (not expired) while the test ran: the figures above were taken under self-preservation.
    assert.equal(metricValue(await scrape(serve), 'switchboard_self_preservation_active'), 1);
    console.log(`      held ${held}, expired before self-preservation engaged ${expired}; ${2 * DEAD * REQUESTS} requests to dead tools, all 503 not_running`);
  });
});
