import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { waitFor, sleep } from '../support/wait';
import { metricValue } from '../support/metrics';
import { Traffic, type Answer } from '../support/traffic';

interface Backend {
  server: http.Server;
  port: number;
  hits: number;
}

async function backend(name: string, delayMs = 0): Promise<Backend> {
  const b: Backend = { server: http.createServer(), port: 0, hits: 0 };
  b.server.on('request', (req, res) => {
    b.hits++;
    const reply = () => res.end(`${name} ${req.url}`);
    if (delayMs) setTimeout(reply, delayMs);
    else reply();
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

async function put(registry: SwitchboardProcess, tool: string, port: number): Promise<Response> {
  return fetch(`${registry.control}/v1/tools/${tool}/backends/b1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${registry.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: `http://127.0.0.1:${port}`, ttl: 30 }),
  });
}

async function get(proxy: SwitchboardProcess, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${proxy.proxy}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

describe('registry and proxies as separate processes on one Redis', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let registry: SwitchboardProcess;
  let proxies: SwitchboardProcess[];
  const backends: Backend[] = [];
  const env = () => ({ REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' });
  const config = { proxy: { feedPollMs: 200 } };

  before(async () => {
    redis = await new RedisServer().start();
    registry = await startProcess('registry', { env: env(), config });
    proxies = await Promise.all([startProcess('proxy', { env: env(), config }), startProcess('proxy', { env: env(), config })]);
    for (const name of ['alpha', 'beta', 'gamma']) backends.push(await backend(name));
  });
  after(async () => {
    await Promise.all([registry, ...(proxies ?? [])].map((p) => p?.kill()));
    for (const b of backends) b.server.close();
    await redis?.stop();
  });

  it('a registration through the registry is routable on every proxy', async () => {
    for (const [i, name] of ['alpha', 'beta', 'gamma'].entries()) assert.equal((await put(registry, name, backends[i].port)).status, 200);
    for (const p of proxies) {
      for (const name of ['alpha', 'beta', 'gamma']) {
        const r = await waitFor(`${name} on proxy ${p.proxyPort}`, async () => {
          const r = await get(p, `/${name}/x?y=1`);
          return r.status === 200 ? r : null;
        });
        assert.equal(r.body, `${name} /${name}/x?y=1`);
      }
    }
  });

  it('keeps routing with zero failed requests while Redis is down, and resynchronises when it is back', async () => {
    const traffic = new Traffic({ proxies: proxies.map((p) => p.proxy), tools: ['alpha', 'beta', 'gamma'], maxPerLoop: 5000, maxMs: 60_000 });
    /** Requests answered 200 by each proxy, to tell those served while Redis was down. */
    const servedBy = (answers: Answer[]) => proxies.map((p) => answers.filter((a) => a.proxy === p.proxy && a.status === 200).length);
    await waitFor('traffic through every proxy', async () => servedBy(traffic.answers).every((n) => n > 0), 5000, 20);
    await redis.kill();
    const atKill = traffic.answers.length;
    await sleep(1500);

    const refused = await put(registry, 'delta', backends[0].port);
    assert.equal(refused.status, 503, 'registry writes answer 503 while the store is down');
    assert.ok(refused.headers.get('retry-after'), 'with Retry-After');
    const ready = await fetch(`${proxies[0].control}/readyz`);
    const detail = (await ready.json()) as { proxy: { storeUp: boolean; hasSnapshot: boolean } };
    assert.equal(detail.proxy.storeUp, false, '/readyz says the proxy serves a table the store cannot confirm');
    assert.equal(detail.proxy.hasSnapshot, true);

    const servedWhileDown = servedBy(traffic.answers.slice(atKill));
    await redis.start(); // comes back empty: the launchers' heartbeats rebuild it
    await sleep(1000);
    await traffic.stop();
    assert.deepEqual(traffic.failures.slice(0, 5), [], `${traffic.failures.length} failed requests for a live route (ok=${traffic.served})`);
    assert.ok(traffic.served > 50, `traffic really flowed (${traffic.served} requests)`);
    // Counted up to the restart: these were answered while Redis was away.
    for (const [i, n] of servedWhileDown.entries()) assert.ok(n >= 20, `proxy ${i} served ${n} requests while Redis was down`);
    console.log(`      ${traffic.served} requests, 0 failed; served while Redis was down: ${servedWhileDown.join(' and ')}`);

    // delta on a port of its own: the registry writes the lost table's assignments back, so beta's port is beta's again.
    const delta = await backend('delta');
    backends.push(delta);
    assert.equal((await waitFor('registry writes again', async () => ((await put(registry, 'delta', delta.port)).status === 200 ? true : null), 15_000)), true);
    for (const p of proxies) {
      await waitFor(`delta on proxy ${p.proxyPort} after the restart`, async () => (await get(p, '/delta/')).status === 200, 10_000);
      assert.equal((await get(p, '/alpha/')).status, 200, 'old routes carried over while heartbeats rebuild the table');
    }
  });

  it('drains an in-flight request on SIGTERM and exits 0', async () => {
    const slow = await backend('slow', 1000);
    backends.push(slow);
    assert.equal((await put(registry, 'slow', slow.port)).status, 200);
    const p = await startProcess('proxy', { env: env(), config });
    await waitFor('slow routed', async () => (await get(p, '/slow/warm')).status === 200, 10_000);
    const inflight = get(p, '/slow/drain');
    await sleep(200);
    const exited = p.kill('SIGTERM');
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow /slow/drain');
    assert.equal(await exited, 0);
  });

  it('--workers 2 serves from both workers and sums their metrics on the control port', async () => {
    // Redis restarted empty in an earlier test: register alpha again rather than rely on that order.
    assert.equal((await put(registry, 'alpha', backends[0].port)).status, 200);
    const p = await startProcess('proxy', { env: env(), config, args: ['--workers', '2'] });
    try {
      await waitFor('workers listening', async () => (await fetch(`${p.control}/readyz`)).status === 200, 15_000);
      await waitFor('alpha via workers', async () => (await get(p, '/alpha/')).status === 200, 10_000);
      const N = 40;
      for (let i = 0; i < N; i++) assert.equal((await get(p, '/alpha/')).status, 200);
      const text = await (await fetch(`${p.control}/metrics`)).text();
      assert.ok(metricValue(text, 'switchboard_proxy_requests_total', { code: '200' }) >= N + 1, 'the sum over workers counts every request');
    } finally {
      await p.kill('SIGTERM');
    }
  });
});
