import assert from 'node:assert/strict';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { TableFeed } from '../../src/table/table-feed';
import { LeaseExpirer } from '../../src/registry/expirer';
import { Leadership } from '../../src/registry/leadership';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import type { Store } from '../../src/registry/store';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { waitFor, sleep } from '../support/wait';
import { metricValue } from '../support/metrics';

function leases(over: Partial<Config['leases']['selfPreservation']> = {}): Config['leases'] {
  const c = loadConfig({ env: {} });
  return { ...c.leases, minTtlSeconds: 1, expiryIntervalMs: 100, lockTtlMs: 1000, selfPreservation: { ...c.leases.selfPreservation, ...over } };
}

async function register(store: Store, tool: string, id: string, port: number, ttl: number, now = Date.now()) {
  const r = await store.upsertBackend({ tool, id, url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, ttl, source: 'registered', now });
  assert.equal(r.ok, true);
}

let redis: RedisServer;
let prefixN = 0;
const stores: Array<[string, () => Promise<Store>]> = [
  ['memory', async () => new MemoryStore()],
  ['redis', async () => RedisStore.connect({ url: redis.url, keyPrefix: `exp${++prefixN}:`, commandTimeoutMs: 1000 })],
];

before(async () => {
  redis = await new RedisServer().start();
});
after(async () => {
  await redis.stop();
});

for (const [name, make] of stores) {
  describe(`lease expiry (${name} store)`, () => {
    let store: Store;
    let leadership: Leadership;
    let metrics: Metrics;
    const logger = silentLogger();

    beforeEach(async () => {
      store = await make();
      metrics = new Metrics();
      leadership = new Leadership(store, 'expiry', 1000, logger);
      leadership.start();
      await waitFor('leadership', async () => leadership.isLeader);
    });
    afterEach(async () => {
      await leadership.stop();
      await store.close();
    });

    it('removes a lapsed lease within TTL + 1 s and keeps a renewed one, in the store and in a proxy\'s table', async () => {
      const expirer = new LeaseExpirer(store, leadership, leases(), logger, metrics);
      // What a proxy routes on: the route table its feed keeps from the store.
      const feed = new TableFeed(store, { pollMs: 100, carryOverMs: 30_000, logger });
      await feed.start();
      const routed = (tool: string) => (feed.current()?.lookup(tool)?.backends.length ?? 0) > 0;
      expirer.start();
      try {
        const t0 = Date.now();
        await register(store, 'dies', 'a', 20001, 1);
        await register(store, 'lives', 'a', 20002, 1);
        const renew = setInterval(() => void register(store, 'lives', 'a', 20002, 1), 300);
        try {
          await waitFor('both routed by the proxy', async () => routed('dies') && routed('lives'), 2000, 10);
          await waitFor('lapsed lease removed and unrouted', async () => (await store.getBackends('dies')).length === 0 && !routed('dies'), 3000, 20);
          assert.ok(Date.now() - t0 <= 2000 + 200, 'removed and unrouted within TTL + 1 s (plus scheduling slack)');
          await sleep(1200);
          assert.equal((await store.getBackends('lives')).length, 1);
          assert.ok(routed('lives'), 'the renewed lease is still routed');
        } finally {
          clearInterval(renew);
        }
        assert.equal(await metrics.leaseExpirations.get().then((m) => m.values[0].value), 1);
      } finally {
        await expirer.stop();
        await feed.stop();
      }
    });

    it('pauses when a quarter of a large fleet lapses at once, and never past the hard cap', async () => {
      const expirer = new LeaseExpirer(store, leadership, leases({ minFleet: 10, threshold: 0.25, hardCapMultiplier: 3 }), logger, metrics);
      const now = Date.now();
      for (let i = 0; i < 12; i++) await register(store, `t${i}`, 'a', 21000 + i, 60, now);
      for (let i = 0; i < 5; i++) await register(store, `l${i}`, 'a', 22000 + i, 1, now - 1500); // lapsed 0.5 s ago
      assert.equal(await expirer.runOnce(now), 0);
      assert.equal(expirer.selfPreservationActive, true);
      assert.equal((await metrics.selfPreservationActive.get()).values[0].value, 1);
      assert.equal(await store.backendCount(), 17);
      // Past 3 x TTL since the last heartbeat the cap wins even while paused.
      assert.equal(await expirer.runOnce(now + 2000), 5);
      assert.equal(await store.backendCount(), 12);
    });

    it('marks the leases it holds back as held, and the hard cap still removes them', async () => {
      const expirer = new LeaseExpirer(store, leadership, leases({ minFleet: 10, threshold: 0.25, hardCapMultiplier: 3 }), logger, metrics);
      const now = Date.now();
      for (let i = 0; i < 12; i++) await register(store, `t${i}`, 'a', 21000 + i, 60, now);
      for (let i = 0; i < 5; i++) await register(store, `l${i}`, 'a', 22000 + i, 1, now - 1500);
      const v = (await store.version()).version;
      assert.equal(await expirer.runOnce(now), 0);
      assert.equal(expirer.selfPreservationActive, true);
      const held = async () => (await store.snapshot()).backends.filter((b) => b.held).map((b) => b.tool).sort();
      assert.deepEqual(await held(), ['l0', 'l1', 'l2', 'l3', 'l4']);
      assert.equal((await store.version()).version, v + 1, 'one routing mutation for the five');
      // A later round while still paused marks nothing again.
      assert.equal(await expirer.runOnce(now + 100), 0);
      assert.equal((await store.version()).version, v + 1);
      // A heartbeat ends l0's hold; the hard cap removes the other four.
      await register(store, 'l0', 'a', 22000, 60, now + 200);
      assert.deepEqual(await held(), ['l1', 'l2', 'l3', 'l4']);
      assert.equal(await expirer.runOnce(now + 2000), 4);
      assert.deepEqual(await held(), []);
      assert.equal(await store.backendCount(), 13);
    });

    it('resumes when heartbeats recover', async () => {
      const expirer = new LeaseExpirer(store, leadership, leases(), logger, metrics);
      const now = Date.now();
      for (let i = 0; i < 12; i++) await register(store, `t${i}`, 'a', 21000 + i, 60, now);
      for (let i = 0; i < 5; i++) await register(store, `l${i}`, 'a', 22000 + i, 1, now - 1500);
      await expirer.runOnce(now);
      assert.equal(expirer.selfPreservationActive, true);
      for (let i = 0; i < 4; i++) await register(store, `l${i}`, 'a', 22000 + i, 30, now);
      assert.equal(await expirer.runOnce(now + 100), 1, 'the one still lapsed goes');
      assert.equal(expirer.selfPreservationActive, false);
      assert.equal((await metrics.selfPreservationActive.get()).values[0].value, 0);
    });

    it('does not trap a small fleet: below the minimum size everything lapsed is evicted', async () => {
      const expirer = new LeaseExpirer(store, leadership, leases({ minFleet: 10 }), logger, metrics);
      const now = Date.now();
      for (let i = 0; i < 5; i++) await register(store, `s${i}`, 'a', 23000 + i, 1, now - 1500);
      assert.equal(await expirer.runOnce(now), 5);
      assert.equal(expirer.selfPreservationActive, false);
    });

    it('gives leases a grace period after nobody could expire for longer than a TTL', async () => {
      const cfg = leases();
      const expirer = new LeaseExpirer(store, leadership, cfg, logger, metrics);
      const now = Date.now();
      await store.swapCheckpoint('expiry', now - (cfg.defaultTtlSeconds + 5) * 1000);
      await register(store, 'g', 'a', 24000, 1, now - 1500);
      assert.equal(await expirer.runOnce(now), 0);
      assert.equal(expirer.inGrace, true);
      assert.equal(await store.backendCount(), 1);
      assert.equal(await expirer.runOnce(now + (cfg.defaultTtlSeconds * 1000) / 2), 0, 'still in grace');
      assert.equal(await expirer.runOnce(now + cfg.defaultTtlSeconds * 1000 + 10), 1, 'expires once the grace ends');
    });

    it('does nothing while another process holds the lock', async () => {
      const other = new Leadership(store, 'expiry', 1000, logger);
      other.start();
      try {
        await sleep(100);
        assert.equal(other.isLeader, false);
        const expirer = new LeaseExpirer(store, other, leases(), logger, metrics);
        await register(store, 'x', 'a', 25000, 1, Date.now() - 1500);
        assert.equal(await expirer.runOnce(), 0);
        assert.equal(await store.backendCount(), 1);
      } finally {
        await other.stop();
      }
    });
  });
}

describe('lease expiry with two registry processes on one Redis', function () {
  this.timeout(60_000);
  let a: SwitchboardProcess;
  let b: SwitchboardProcess;
  const config = { leases: { minTtlSeconds: 1, lockTtlMs: 1500, expiryIntervalMs: 100 } };

  before(async () => {
    const env = { REDIS_URL: redis.url };
    [a, b] = await Promise.all([startProcess('registry', { env, config }), startProcess('registry', { env, config })]);
  });
  after(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
  });

  async function put(p: SwitchboardProcess, tool: string, port: number, ttl = 1) {
    const res = await fetch(`${p.control}/v1/tools/${tool}/backends/a`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}`, ttl }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  async function expirations(p: SwitchboardProcess): Promise<number> {
    return metricValue(await (await fetch(`${p.control}/metrics`)).text(), 'switchboard_lease_expirations_total');
  }
  async function tools(p: SwitchboardProcess): Promise<number> {
    const res = await fetch(`${p.control}/v1/tools`, { headers: { authorization: `Bearer ${p.adminToken}` } });
    return ((await res.json()) as { tools: Array<{ backends: unknown[] }> }).tools.filter((t) => t.backends.length > 0).length;
  }

  it('expires each lapsed lease exactly once, and the survivor takes over when the leader dies', async () => {
    for (let i = 0; i < 6; i++) await put(i % 2 ? a : b, `two${i}`, 26000 + i);
    await waitFor('all six expired', async () => (await tools(a)) === 0, 5000);
    const total = (await expirations(a)) + (await expirations(b));
    assert.equal(total, 6, 'six lapses, six expirations across both processes');

    const leader = (await expirations(a)) > 0 ? a : b;
    const survivor = leader === a ? b : a;
    const before = await expirations(survivor);
    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    for (let i = 0; i < 3; i++) await put(survivor, `after${i}`, 27000 + i);
    await waitFor('the survivor expires them', async () => (await tools(survivor)) === 0, 8000);
    assert.ok(Date.now() - killedAt < 2 * 1500 + 1000 + 1000, 'taken over within twice the lock TTL (plus the lease TTL)');
    assert.equal((await expirations(survivor)) - before, 3);
  });
});
