import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { alive, heartbeat, readyz, toolsWithBackends } from './helpers';
import { get } from '../support/traffic';
import { waitFor, sleep } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';
import { metricValue } from '../support/metrics';

const LOCK_TTL_MS = 1500;

describe('two registry processes and two proxy processes on one Redis', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let registries: SwitchboardProcess[] = [];
  let proxies: SwitchboardProcess[] = [];
  const backends: Backend[] = [];
  const started: SwitchboardProcess[] = [];
  // Self-preservation would pause expiry when most of this small fleet lapses at once: not what is tested here.
  const config = {
    leases: { minTtlSeconds: 1, lockTtlMs: LOCK_TTL_MS, expiryIntervalMs: 100, selfPreservation: { minFleet: 1000 } },
    proxy: { feedPollMs: 500 },
    discovery: { reconcileIntervalMs: 300 },
  };
  const env = () => ({ REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' });
  const startRegistry = async () => {
    const p = await startProcess('registry', { env: env(), config });
    started.push(p);
    return p;
  };

  before(async () => {
    redis = await new RedisServer().start();
    registries = await Promise.all([startRegistry(), startRegistry()]);
    // Each proxy reports what it discovers to a different registry: both may see the same tool at once.
    proxies = await Promise.all(registries.map((r) => startProcess('proxy', { env: { ...env(), SWITCHBOARD_REGISTRY: r.control }, config })));
    started.push(...proxies);
    for (let i = 0; i < 4; i++) backends.push(await startBackend(`both${i}`));
  });
  after(async () => {
    await Promise.all(started.map((p) => p.kill()));
    await Promise.all(backends.map((b) => b.close()));
    await redis?.stop();
  });

  async function expirations(p: SwitchboardProcess): Promise<number> {
    const v = metricValue(await (await fetch(`${p.control}/metrics`)).text(), 'switchboard_lease_expirations_total');
    return Number.isNaN(v) ? 0 : v;
  }
  async function heals(p: SwitchboardProcess): Promise<number> {
    const v = metricValue(await (await fetch(`${p.control}/metrics`)).text(), 'switchboard_selfheal_total');
    return Number.isNaN(v) ? 0 : v;
  }
  /** A tool that runs and holds its port but never registered (its one heartbeat was deregistered). */
  async function unregisteredTool(name: string, via: SwitchboardProcess): Promise<Backend> {
    const b = await startBackend(name);
    backends.push(b);
    assert.equal((await heartbeat(via, name, b.port, 30)).status, 200);
    const del = await fetch(`${via.control}/v1/tools/${name}/backends/b1`, { method: 'DELETE', headers: { authorization: `Bearer ${via.adminToken}` } });
    assert.equal(del.status, 204);
    return b;
  }
  async function discoveredBackends(p: SwitchboardProcess, tool: string): Promise<number> {
    const res = await fetch(`${p.control}/v1/tools/${tool}`, { headers: { authorization: `Bearer ${p.adminToken}` } });
    if (res.status !== 200) return 0;
    return ((await res.json()) as { backends: Array<{ source: string }> }).backends.filter((b) => b.source === 'discovered').length;
  }
  async function leaderOf(list: SwitchboardProcess[]): Promise<SwitchboardProcess[]> {
    const out: SwitchboardProcess[] = [];
    for (const p of list) if ((await readyz(p)).registry.expiryLeader === true) out.push(p);
    return out;
  }

  it('a registration through either registry is routable on both proxies', async () => {
    for (const [i, b] of backends.entries()) {
      const res = await heartbeat(registries[i % 2], b.name, b.port, 30);
      assert.equal(res.status, 200, await res.text());
    }
    for (const p of proxies) {
      for (const b of backends) {
        await waitFor(`${b.name} on proxy ${p.proxyPort}`, async () => {
          const r = await get(p.proxyPort, `/${b.name}/x`);
          return r.status === 200 && r.body === `${b.name} /${b.name}/x`;
        });
      }
    }
  });

  it('a running tool without a registration is healed once, though both proxies and the reconciler find it at the same time', async () => {
    const before = (await heals(registries[0])) + (await heals(registries[1]));
    const tools: Backend[] = [];
    for (let i = 0; i < 5; i++) tools.push(await unregisteredTool(`heal${i}`, registries[i % 2]));
    // Requests on both proxies at once: each probes, serves, and reports to its own registry.
    const served = await Promise.all(tools.flatMap((t) => proxies.flatMap((p) => [1, 2, 3].map(() => get(p.proxyPort, `/${t.name}/x`)))));
    assert.ok(served.every((r) => r.status === 200 && r.body.startsWith('heal')), JSON.stringify(served.filter((r) => r.status !== 200).slice(0, 3)));
    for (const t of tools) await waitFor(`${t.name} healed`, async () => (await discoveredBackends(registries[0], t.name)) === 1, 10_000, 50);
    // Let the reconciler run a few rounds over them too.
    await sleep(1000);
    const total = (await heals(registries[0])) + (await heals(registries[1])) - before;
    console.log(`      figures: ${JSON.stringify({ healsCounted: total, toolsHealed: tools.length })}`);
    assert.equal(total, tools.length, 'one heal per tool across both registries');
    for (const t of tools) assert.equal(await discoveredBackends(registries[1], t.name), 1);
  });

  it(`killing the expiry leader hands leadership over within twice the lock TTL (${LOCK_TTL_MS} ms); every lapsed lease is expired once`, async () => {
    await waitFor('exactly one leader', async () => (await leaderOf(registries)).length === 1, 5000);
    const [leader] = await leaderOf(registries);
    const survivor = registries.find((p) => p !== leader)!;
    const before = await expirations(survivor);
    // Leases that lapse only after the leader is dead: nobody but the survivor can expire them.
    for (let i = 0; i < 5; i++) assert.equal((await heartbeat(i % 2 ? leader : survivor, `lapse${i}`, 27000 + i, 2)).status, 200);
    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('the survivor to take the lock', async () => (await readyz(survivor)).registry.expiryLeader === true, 2 * LOCK_TTL_MS, 20);
    const takeoverMs = Date.now() - killedAt;
    await waitFor('the lapsed leases expired', async () => [...(await toolsWithBackends(survivor))].every((t) => !t.startsWith('lapse')), 10_000, 50);
    assert.equal((await expirations(survivor)) - before, 5, 'five lapses, five expirations');
    // The reconciler moved with the lock: a tool found now is healed by the survivor, once.
    const healsBefore = await heals(survivor);
    const late = await unregisteredTool('heal-late', survivor);
    await waitFor('healed by the new leader', async () => (await discoveredBackends(survivor, late.name)) === 1, 10_000, 50);
    await sleep(1000);
    assert.equal((await heals(survivor)) - healsBefore, 1);
    console.log(`      figures: ${JSON.stringify({ lockTtlMs: LOCK_TTL_MS, takeoverMs })}`);
    registries = [survivor, await startRegistry()];
  });

  it('a leader that stalls (SIGSTOP) longer than the lock TTL is replaced, and on waking expires nothing twice', async () => {
    await waitFor('exactly one leader', async () => (await leaderOf(registries)).length === 1, 5000);
    const [leader] = await leaderOf(registries);
    const other = registries.find((p) => p !== leader)!;
    const before = (await expirations(leader)) + (await expirations(other));
    const N = 8;
    for (let i = 0; i < N; i++) assert.equal((await heartbeat(registries[i % 2], `stall${i}`, 28000 + i, 1)).status, 200);
    leader.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await waitFor('the other registry to lead', async () => (await readyz(other)).registry.expiryLeader === true, 2 * LOCK_TTL_MS, 20);
      console.log(`      figures: ${JSON.stringify({ takeoverFromStalledLeaderMs: Date.now() - stoppedAt })}`);
      await waitFor('the lapsed leases expired', async () => [...(await toolsWithBackends(other))].every((t) => !t.startsWith('stall')), 10_000, 50);
    } finally {
      leader.proc.kill('SIGCONT');
    }
    // The woken leader's timers and any reply it had in flight run now: give them time to do harm.
    await sleep(2 * LOCK_TTL_MS);
    const after = (await expirations(leader)) + (await expirations(other));
    assert.equal(after - before, N, `${N} lapses, ${N} expirations across both registries`);
    assert.equal((await leaderOf(registries)).length, 1, 'one leader again');
    for (const p of [...registries, ...proxies]) assert.ok(alive(p));
  });
});
