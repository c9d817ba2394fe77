import assert from 'node:assert/strict';
import { StatusSource } from '../../src/control/status-data';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { PassiveHealth } from '../../src/proxy/health';
import { createRouteBackend } from '../../src/table/route-backend';
import { TableFeed } from '../../src/table/table-feed';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import { Registry } from '../../src/registry/registry';
import type { Store } from '../../src/registry/store';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

function registryOn(store: Store): Registry {
  const config = loadConfig({ env: {}, overrides: { adminToken: 'y'.repeat(32) } });
  return new Registry({ store, config, metrics: new Metrics({ defaultMetrics: false }), logger: silentLogger() });
}

async function fill(registry: Registry): Promise<void> {
  await registry.heartbeat({ tool: 'web', id: 'b2', url: 'http://127.0.0.1:21002', ttl: 40, clientVersion: 'c/2', source: 'registered' });
  await registry.heartbeat({ tool: 'web', id: 'b1', url: 'http://127.0.0.1:21001', ttl: 40, source: 'registered' });
  await registry.heartbeat({ tool: 'found', id: 'd1', url: 'http://127.0.0.1:21003', source: 'discovered' });
  await registry.allocatePort('idle', '127.0.0.1');
}

describe('status data', function () {
  this.timeout(60_000);

  it('lists every tool by name with backends by id, sources, leases, assignments, counts and the table version', async () => {
    const store = new MemoryStore();
    await fill(registryOn(store));
    const r = await new StatusSource({ store }).report();
    assert.deepEqual(r.tools.map((t) => t.tool), ['found', 'idle', 'web']);
    const web = r.tools[2];
    assert.deepEqual(web.backends.map((b) => [b.id, b.url, b.source, b.health, b.clientVersion]), [
      ['b1', 'http://127.0.0.1:21001', 'registered', 'unknown', undefined],
      ['b2', 'http://127.0.0.1:21002', 'registered', 'unknown', 'c/2'],
    ]);
    for (const b of web.backends) assert.ok(b.leaseSecondsLeft !== null && b.leaseSecondsLeft > 0 && b.leaseSecondsLeft <= 40);
    assert.deepEqual(web.assignments, [
      { host: '127.0.0.1', port: 21001 },
      { host: '127.0.0.1', port: 21002 },
    ]);
    assert.equal(r.tools[0].backends[0].source, 'discovered');
    assert.deepEqual(r.tools[1], { tool: 'idle', state: 'not_running', url: null, traffic: null, backends: [], assignments: [{ host: '127.0.0.1', port: 20000 }] });
    assert.deepEqual(r.tools.map((t) => t.state), ['discovered', 'not_running', 'live']);
    assert.deepEqual(r.states, { lost: 0, held: 0, not_running: 1, discovered: 1, live: 1 });
    assert.equal(r.traffic, null, 'no proxy: no traffic counted');
    assert.deepEqual(r.counts, { tools: 3, routes: 2, backends: 3, assignments: 4, assignmentsWithoutBackend: 1 });
    assert.deepEqual(r.table, await store.version());
    assert.deepEqual(r.store.state, 'reachable');
    assert.equal(r.store.kind, 'memory');
    assert.equal(r.snapshot, null);
  });

  it("judges health by the proxy's passive health", async () => {
    const store = new MemoryStore();
    await fill(registryOn(store));
    const health = new PassiveHealth({ baseCooloffMs: 60_000, maxCooloffMs: 60_000 });
    health.markFailure('web', createRouteBackend({ id: 'b2', url: 'http://127.0.0.1:21002', source: 'registered' })!);
    const r = await new StatusSource({ store, health }).report();
    const web = r.tools.find((t) => t.tool === 'web')!;
    assert.deepEqual(web.backends.map((b) => [b.id, b.health]), [['b1', 'ok'], ['b2', 'down']]);
  });

  describe('on Redis that fails', () => {
    let redis: RedisServer;
    let store: RedisStore;
    let feed: TableFeed | null = null;
    beforeEach(async () => {
      redis = await new RedisServer().start();
      store = await RedisStore.connect({ url: redis.url, keyPrefix: 'status-data:', commandTimeoutMs: 500, logger: silentLogger() });
    });
    afterEach(async () => {
      redis.resume();
      await feed?.stop();
      feed = null;
      await store.close();
      await redis.stop();
    });

    it('with nothing ever read: says unreachable and shows nothing rather than failing', async () => {
      await redis.kill();
      const r = await new StatusSource({ store }).report();
      assert.equal(r.store.state, 'unreachable');
      assert.equal(r.store.dataFrom, 'none');
      assert.deepEqual(r.tools, []);
      assert.equal(r.table, null);
    });

    it('without a route table: shows the last data read, and when it was read', async () => {
      await fill(registryOn(store));
      const source = new StatusSource({ store });
      const before = await source.report();
      await redis.kill();
      const after = await source.report();
      assert.equal(after.store.state, 'unreachable');
      assert.equal(after.store.dataFrom, 'last-known');
      assert.equal(after.store.dataAt, before.store.dataAt);
      assert.deepEqual(after.table, before.table);
      assert.deepEqual(after.tools.map((t) => [t.tool, t.backends.map((b) => b.id)]), before.tools.map((t) => [t.tool, t.backends.map((b) => b.id)]));
    });

    it("with a route table: shows what the process routes on, with the leases last read", async () => {
      await fill(registryOn(store));
      feed = new TableFeed(store, { pollMs: 200, carryOverMs: 30_000, logger: silentLogger() });
      await feed.start();
      const source = new StatusSource({ store, routes: feed });
      const before = await source.report();
      assert.equal(before.snapshot?.version, before.table?.version);
      await redis.kill();
      const after = await source.report();
      assert.equal(after.store.dataFrom, 'snapshot');
      assert.equal(after.store.state, 'unreachable');
      assert.deepEqual(after.table, before.table);
      const web = after.tools.find((t) => t.tool === 'web')!;
      assert.deepEqual(web.backends.map((b) => [b.id, b.url, b.clientVersion]), [
        ['b1', 'http://127.0.0.1:21001', undefined],
        ['b2', 'http://127.0.0.1:21002', 'c/2'],
      ]);
      assert.ok(web.backends.every((b) => b.leaseSecondsLeft !== null && b.leaseSecondsLeft > 0));
      assert.deepEqual(after.tools.find((t) => t.tool === 'idle')?.assignments, [{ host: '127.0.0.1', port: 20000 }]);
    });

    it('a hung store does not hang the report: it answers with the last known data, then recovers', async () => {
      await fill(registryOn(store));
      const source = new StatusSource({ store, timeoutMs: 300 });
      await source.report();
      redis.pause();
      // Several at once: they share one outstanding read.
      const reports = await Promise.all([source.report(), source.report(), source.report()]);
      for (const r of reports) {
        assert.equal(r.store.state, 'unreachable');
        assert.equal(r.store.dataFrom, 'last-known');
        assert.equal(r.counts.backends, 3);
      }
      redis.resume();
      const back = await waitFor('reachable again', async () => {
        const r = await source.report();
        return r.store.state === 'reachable' ? r : null;
      }, 30_000, 200);
      assert.equal(back.counts.backends, 3);
    });
  });
});
