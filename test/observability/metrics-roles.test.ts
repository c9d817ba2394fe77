import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { heartbeat, viaProxy } from './helpers';
import { checkMetrics } from './promtool';
import { waitFor } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';
import { metricValue, scrape, waitMetric } from '../support/metrics';

const NODE_DEFAULTS = ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes'];

describe('metrics of proxy, registry and --workers processes on Redis', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let registry: SwitchboardProcess;
  let proxy: SwitchboardProcess;
  const backends: Backend[] = [];
  const env = () => ({ REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' });
  const config = { proxy: { feedPollMs: 200 } };

  before(async () => {
    redis = await new RedisServer().start();
    registry = await startProcess('registry', { env: env(), config });
    proxy = await startProcess('proxy', { env: env(), config });
    for (const name of ['alpha', 'beta', 'gamma']) backends.push(await startBackend(name));
  });
  after(async () => {
    await Promise.all([registry?.kill(), proxy?.kill()]);
    for (const b of backends) await b.close();
    await redis?.stop();
  });

  it('each role exports valid metrics with Node defaults; the registry reports the table without proxying', async () => {
    for (const [i, name] of ['alpha', 'beta', 'gamma'].entries()) {
      assert.equal((await heartbeat(registry, name, 'b1', { url: backends[i].url })).status, 200);
    }
    for (const p of [registry, proxy]) {
      const text = await waitMetric(p, 'switchboard_routes', {}, (v) => v === 3);
      assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered' }), 3);
      assert.equal(metricValue(text, 'switchboard_assignments'), 3);
      assert.equal(metricValue(text, 'switchboard_store_up'), 1);
      assert.ok(metricValue(text, 'switchboard_route_table_version') >= 3);
      for (const name of NODE_DEFAULTS) assert.ok(Number.isFinite(metricValue(text, name)), `${name} on ${p.controlPort}`);
      await checkMetrics(text);
    }
    const reg = await scrape(registry);
    assert.equal(metricValue(reg, 'switchboard_registrations_total', { result: 'created' }), 3);
    const prox = await scrape(proxy);
    assert.equal(metricValue(prox, 'switchboard_registrations_total', { result: 'created' }), 0, 'a proxy registers nothing');
  });

  it('store_up goes to 0 on every role when Redis dies, scrapes keep answering, and it comes back', async () => {
    await waitFor('proxy routes alpha', async () => (await viaProxy(proxy, '/alpha/')) === 200);
    await redis.kill();
    try {
      for (const p of [registry, proxy]) {
        const text = await waitMetric(p, 'switchboard_store_up', {}, (v) => v === 0);
        // The last table is still held and still reported: the store being down is not "no routes".
        assert.equal(metricValue(text, 'switchboard_routes'), 3);
        await checkMetrics(text);
      }
      // Requests keep being served from memory meanwhile.
      assert.equal(await viaProxy(proxy, '/alpha/'), 200);
    } finally {
      await redis.start();
    }
    for (const p of [registry, proxy]) await waitMetric(p, 'switchboard_store_up', {}, (v) => v === 1);
  });

  for (const verb of ['proxy', 'serve']) {
    it(`${verb} --workers 2: the control port sums events over workers but does not multiply the route table`, async () => {
      // Redis restarted empty in the test before: register again (idempotent otherwise).
      for (const [i, name] of ['alpha', 'beta', 'gamma'].entries()) {
        assert.equal((await heartbeat(registry, name, 'b1', { url: backends[i].url })).status, 200);
      }
      const p = await startProcess(verb, { env: env(), config, args: ['--workers', '2'] });
      try {
        await waitFor('workers ready', async () => (await fetch(`${p.control}/readyz`)).status === 200, 20_000);
        await waitMetric(p, 'switchboard_routes', {}, (v) => v === 3);
        const N = 20;
        for (let i = 0; i < N; i++) assert.equal(await viaProxy(p, '/beta/'), 200);
        const text = await waitMetric(p, 'switchboard_proxy_requests_total', { code: '200' }, (v) => v >= N);
        // Every process holds the same three routes: a sum would say 6, or 9 counting a serve primary.
        assert.equal(metricValue(text, 'switchboard_routes'), 3);
        assert.equal(metricValue(text, 'switchboard_backends', { source: 'registered' }), 3);
        assert.equal(metricValue(text, 'switchboard_assignments'), 3);
        assert.equal(metricValue(text, 'switchboard_store_up'), 1);
        assert.equal(metricValue(text, 'switchboard_self_preservation_active'), 0);
        for (const name of NODE_DEFAULTS) assert.ok(Number.isFinite(metricValue(text, name)), name);
        assert.equal(text.match(/^switchboard_routes /gm)?.length, 1, 'one sample, not one per worker');
        await checkMetrics(text);
      } finally {
        await p.kill('SIGTERM');
      }
    });
  }
});
