import assert from 'node:assert/strict';
import type { Switchboard } from '../../src/app';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import type { Store } from '../../src/registry/store';
import { api, controlUrl, startInProcess, toolServer, type Reply, type ToolServer } from '../discovery/helpers';
import { freePortRange } from '../launcher/helpers';
import { storeKinds } from '../registry/harness';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';
import { metricValue } from '../support/metrics';

const HOST = '127.0.0.1';

/** POST /v1/ports, asked again while the registry answers 503 (its store connection is coming back). */
async function allocate(base: string, tool: string): Promise<number> {
  // Only the 503 is waited out; any other answer ends the wait and is checked here, not retried.
  const reply: Reply = await waitFor(`a port for ${tool}`, async () => {
    const r = await api(base, 'POST', '/v1/ports', { tool, host: HOST });
    return r.status === 503 ? null : r;
  }, 15_000);
  assert.equal(reply.status, 200, reply.text);
  return reply.body.port as number;
}

describe('Redis restarted empty: ports stay with the tools that hold them', function () {
  this.timeout(60_000);
  const redis = new RedisServer();
  let store: Store;
  let sb: Switchboard;
  let base: string;
  let range: { min: number; max: number };
  const servers: ToolServer[] = [];

  before(async () => {
    await redis.start();
    range = await freePortRange(8);
    store = await RedisStore.connect({ url: redis.url, keyPrefix: 'recovery:', commandTimeoutMs: 500, logger: silentLogger() });
    // A registry alone: it follows the table (as every registry process does) and allocates ports.
    sb = await startInProcess(store, {
      roles: { proxy: false, registry: true },
      overrides: { ports: range, leases: { defaultTtlSeconds: 5 } },
    });
    base = controlUrl(sb);
  });
  after(async () => {
    await sb?.stop();
    await store?.close();
    for (const s of servers) await s.close();
    await redis.stop();
  });

  it('a new tool never gets the port of a running tool, the old tool gets its port back, and the lost assignments are written back for good', async () => {
    const alphaPort = await allocate(base, 'alpha');
    const gammaPort = await allocate(base, 'gamma');
    assert.deepEqual([alphaPort, gammaPort], [range.min, range.min + 1]);
    const alpha = await toolServer('alpha', { port: alphaPort });
    servers.push(alpha);
    assert.equal((await api(base, 'PUT', '/v1/tools/alpha/backends/a1', { url: alpha.url })).status, 200);
    await waitFor('the registry to follow both assignments', async () => sb.feed!.current()?.assignmentCount === 2);

    await redis.kill();
    await redis.start();

    // The store is empty: its lowest free port is alpha's, where alpha is listening. Not for beta.
    const betaPort = await allocate(base, 'beta');
    assert.ok(![alphaPort, gammaPort].includes(betaPort), `beta got ${betaPort}, held by a tool of the previous table`);
    assert.equal(betaPort, range.min + 2);
    // alpha's launcher restarting within the window asks again and gets the port it is known by.
    assert.equal(await allocate(base, 'alpha'), alphaPort);
    // Its heartbeat is not refused as a port conflict.
    const hb = await api(base, 'PUT', '/v1/tools/alpha/backends/a1', { url: alpha.url });
    assert.equal(hb.status, 200, hb.text);

    // gamma has no launcher and never heartbeats: the registry wrote its assignment back, so its port stays
    // its own after the carry-over window (one TTL) too, and a later tool gets the next free one.
    await waitFor('the recovery window to end', async () => sb.feed!.carriedAssignments().length === 0, 15_000);
    const deltaPort = await allocate(base, 'delta');
    assert.equal(deltaPort, range.min + 3);

    const listed = (await api(base, 'GET', '/v1/ports')).body.assignments as Array<{ tool: string; port: number }>;
    assert.deepEqual(
      listed.map((a) => `${a.tool}:${a.port}`).sort(),
      [`alpha:${alphaPort}`, `beta:${betaPort}`, `gamma:${gammaPort}`, `delta:${deltaPort}`].sort(),
    );
  });
});

for (const kind of storeKinds()) {
  describe(`a registration whose lease lapsed but is still stored (${kind.name} store)`, function () {
    this.timeout(30_000);
    let store: Store;
    let sb: Switchboard;
    let base: string;
    const servers: ToolServer[] = [];

    before(() => kind.before());
    after(() => kind.after());
    beforeEach(async () => {
      store = await kind.create();
      sb = await startInProcess(store, { roles: { proxy: false, registry: true }, overrides: { leases: { minTtlSeconds: 1 } } });
      base = controlUrl(sb);
      await waitFor('leadership', async () => sb.leadership!.isLeader);
      // Expiry held back, as self-preservation holds it when much of the fleet lapses at once.
      await sb.expirer!.stop();
    });
    afterEach(async () => {
      await sb?.stop();
      await store.close();
      for (const s of servers.splice(0)) await s.close();
    });

    const heals = async () => metricValue(await sb.metrics.registry.metrics(), 'switchboard_selfheal_total', { trigger: 'reconcile' });
    const backendsOf = async (tool: string) => (await api(base, 'GET', `/v1/tools/${tool}`)).body.backends as Array<{ id: string; source: string; url: string }>;

    it('is replaced by a discovered backend once its assignment answers: one heal, then renewals', async () => {
      const old = await toolServer('old');
      const live = await toolServer('live');
      servers.push(old, live);
      assert.equal((await api(base, 'PUT', '/v1/tools/old/backends/r1', { url: old.url, ttl: 1 })).status, 200);
      assert.equal((await api(base, 'PUT', '/v1/tools/live/backends/r1', { url: live.url, ttl: 60 })).status, 200);
      // While the lease is live the registration stands on the assignment: nothing to probe.
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 0, dropped: 0 });
      await waitFor('the lease to lapse', async () => Date.parse((await api(base, 'GET', '/v1/tools/old')).body.backends[0].expiresAt) < Date.now() - 50);
      assert.equal((await backendsOf('old'))[0].source, 'registered', 'expiry is held: the lapsed registration is still stored');

      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 1, healed: 1, renewed: 0, dropped: 0 });
      const after = await backendsOf('old');
      assert.deepEqual(after.map((b) => [b.source, b.url]), [['discovered', old.url]]);
      assert.equal(await heals(), 1);
      assert.equal(live.connections, 0, 'a tool with a live registration is never probed');
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 1, dropped: 0 });
      assert.equal(await heals(), 1);
    });

    it('stays (and is still routed) while its assignment does not answer', async () => {
      const gone = await toolServer('gone');
      servers.push(gone);
      assert.equal((await api(base, 'PUT', '/v1/tools/gone/backends/r1', { url: gone.url, ttl: 1 })).status, 200);
      await gone.close();
      await waitFor('the lease to lapse', async () => Date.parse((await api(base, 'GET', '/v1/tools/gone')).body.backends[0].expiresAt) < Date.now() - 50);
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 1, healed: 0, renewed: 0, dropped: 0 });
      assert.deepEqual((await backendsOf('gone')).map((b) => b.source), ['registered']);
      assert.ok(Number.isNaN(await heals()) || (await heals()) === 0);
    });
  });
}
