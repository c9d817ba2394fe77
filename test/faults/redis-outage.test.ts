import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { alive, allocatePort, fds, heartbeat, readyz } from './helpers';
import { Traffic, echoed, get } from '../support/traffic';
import { waitFor, sleep } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';

const CYCLES = 3;
const OUTAGE_MS = 1500;

/**
 * test/integration/processes.test.ts shows one outage (zero failures, a 503, /readyz). This one repeats
 * the outage under steady traffic and looks for what a single one cannot show: every write during every
 * outage refused promptly, and no process dying or holding more descriptors after each reconnect.
 */
describe('Redis killed and restarted again and again under steady traffic (registry + 2 proxies)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let registry: SwitchboardProcess;
  let proxies: SwitchboardProcess[] = [];
  const backends: Backend[] = [];
  let traffic: Traffic | undefined;

  before(async () => {
    // Keeps its data across restarts (AOF), so what is measured is reconnecting, not rebuilding.
    redis = await new RedisServer({ appendOnly: true }).start();
    const env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' };
    const config = { proxy: { feedPollMs: 200 } };
    [registry, ...proxies] = await Promise.all([
      startProcess('registry', { env, config }),
      startProcess('proxy', { env, config }),
      startProcess('proxy', { env, config }),
    ]);
    for (let i = 0; i < 6; i++) backends.push(await startBackend(`out${i}`));
  });
  after(async () => {
    // A failed assertion leaves the loops running: stop them before the proxies go, or each would spin
    // through its remaining requests against closed ports.
    await traffic?.stop();
    await Promise.all([registry, ...proxies].map((p) => p?.kill()));
    await Promise.all(backends.map((b) => b.close()));
    await redis?.stop();
  });

  it(`${CYCLES} outages: zero failed requests, every write refused with 503 + Retry-After, no process dies, no descriptor leaks`, async () => {
    for (const b of backends) assert.equal((await heartbeat(registry, b.name, b.port, 3600)).status, 200);
    for (const p of proxies) for (const b of backends) await waitFor(`${b.name} routed`, async () => (await get(p.proxyPort, `/${b.name}/`)).status === 200);

    // Bounded, but high enough to outlast the outages on a fast machine: 20,000 a loop ran out before the
    // third outage here, and a test of zero failures during outages must have requests during them.
    traffic = new Traffic({
      proxies: proxies.map((p) => p.proxy),
      tools: backends.map((b) => b.name),
      loops: 4,
      maxPerLoop: 200_000,
      maxMs: 120_000,
      path: (tool, i) => `/${tool}/t${i}`,
      ok: echoed,
    });
    await sleep(1000);
    const processes = [registry, ...proxies];
    // Sockets to Redis and everything else, apart from the pool toward the backends: that pool grows and
    // shrinks with the traffic (one more idle connection to each of the 6 backends is not a leak).
    const descriptors = (pid: number) => fds(pid, { redis: [redis.port], upstream: backends.map((b) => b.port) });
    const fdsBefore = processes.map((p) => descriptors(p.proc.pid!));
    const writes = { refused: 0, other: [] as string[] };
    const servedDuringOutage: number[] = [];

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await redis.kill();
      const downAt = Date.now();
      const servedAtKill = traffic.served;
      // Writes while Redis is away: each answered at once with 503 and Retry-After, never hanging.
      while (Date.now() - downAt < OUTAGE_MS) {
        for (const res of [await heartbeat(registry, 'out0', backends[0].port, 3600), await allocatePort(registry, `newtool${cycle}`)]) {
          const body = (await res.json()) as { error?: { code: string } };
          if (res.status === 503 && res.headers.get('retry-after') && body.error?.code === 'store_unavailable') writes.refused++;
          else writes.other.push(`${res.status} ${JSON.stringify(body)}`);
        }
        await sleep(100);
      }
      for (const p of proxies) assert.equal((await readyz(p)).proxy.storeUp, false, 'the proxy knows it serves a table the store cannot confirm');
      servedDuringOutage.push(traffic.served - servedAtKill);
      await redis.start();
      await waitFor('writes accepted again', async () => (await heartbeat(registry, 'out0', backends[0].port, 3600)).status === 200, 20_000, 100);
      for (const p of proxies) await waitFor('proxy back on the store', async () => (await readyz(p)).proxy.storeUp === true, 20_000, 100);
    }
    await sleep(1000);
    const fdsAfter = processes.map((p) => descriptors(p.proc.pid!));
    await traffic.stop();

    // What the leak assertions below compare: descriptors besides the backend pool, and connections to Redis.
    const besidesPool = (d: (typeof fdsBefore)[number]) => d.total - d.to.upstream;
    const descriptorsBesidesPool = processes.map((_, i) => `${besidesPool(fdsBefore[i])}->${besidesPool(fdsAfter[i])}`);
    const connectionsToRedis = processes.map((_, i) => `${fdsBefore[i].to.redis}->${fdsAfter[i].to.redis}`);
    console.log(`      figures: ${JSON.stringify({ cycles: CYCLES, requestsOk: traffic.served, servedDuringOutage, requestsFailed: traffic.failures.length, writesRefused: writes.refused, descriptorsBesidesPool, connectionsToRedis })}`);
    assert.equal(traffic.failures.length, 0, `no failed request for a live route; first ones: ${JSON.stringify(traffic.failures.slice(0, 5))}`);
    assert.ok(traffic.served > 500, `traffic really flowed (${traffic.served})`);
    for (const [cycle, n] of servedDuringOutage.entries()) assert.ok(n > 100, `requests were served during outage ${cycle + 1} (${n})`);
    assert.deepEqual(writes.other, [], 'every write during an outage was answered 503 store_unavailable with Retry-After');
    assert.ok(writes.refused >= CYCLES * 4);
    for (const [i, p] of processes.entries()) {
      assert.ok(alive(p), `${p.proc.pid} is alive`);
      // A connection leaked per reconnect would show as one more socket to Redis per cycle and per connection.
      const [before, after] = [fdsBefore[i], fdsAfter[i]];
      assert.ok(after.to.redis <= before.to.redis, `connections of ${p.proc.pid} to Redis: ${before.to.redis} before, ${after.to.redis} after`);
      assert.ok(besidesPool(after) - besidesPool(before) <= 2, `descriptors of ${p.proc.pid} besides the backend pool: ${besidesPool(before)} before, ${besidesPool(after)} after`);
      assert.doesNotMatch(p.output(), /uncaught|unhandled|"level":60/i);
    }
  });
});
