import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { api, loseRegistration, toolServer, type ToolServer } from './helpers';
import { waitFor } from '../support/wait';
import { logEvents } from '../support/logs';
import { metricValue } from '../support/metrics';

const N = 6;

async function selfHeals(p: SwitchboardProcess, trigger: string): Promise<number> {
  const text = await (await fetch(`${p.control}/metrics`)).text();
  const v = metricValue(text, 'switchboard_selfheal_total', { trigger });
  return Number.isNaN(v) ? 0 : v;
}

async function isLeader(p: SwitchboardProcess): Promise<boolean> {
  const body = (await (await fetch(`${p.control}/readyz`)).json()) as { registry?: { expiryLeader?: boolean } };
  return body.registry?.expiryLeader === true;
}

describe('discovery across real processes on one Redis', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  const procs: SwitchboardProcess[] = [];
  const servers: ToolServer[] = [];
  const env = () => ({ REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' });

  before(async () => {
    redis = await new RedisServer().start();
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    for (const s of servers) await s.close();
    await redis?.stop();
  });

  it('of two registry processes only the leader reconciles: N tools, N heals', async () => {
    const config = { redis: { keyPrefix: 'twin:' }, discovery: { reconcileIntervalMs: 300 }, leases: { lockTtlMs: 1500 } };
    const [a, b] = await Promise.all([startProcess('registry', { env: env(), config }), startProcess('registry', { env: env(), config })]);
    procs.push(a, b);
    const tools: ToolServer[] = [];
    for (let i = 0; i < N; i++) {
      const t = await toolServer(`tool${i}`);
      servers.push(t);
      tools.push(t);
      await loseRegistration(a.control, t.name, t.url);
    }

    const discovered = async () => {
      const list = (await api(a.control, 'GET', '/v1/tools')).body.tools as Array<{ backends: Array<{ source: string; lastHeartbeat: string }> }>;
      return list.flatMap((t) => t.backends).filter((x) => x.source === 'discovered');
    };
    const healed = await waitFor('every tool healed', async () => {
      const list = await discovered();
      return list.length === N ? list : null;
    }, 20_000);
    // Several more rounds pass (every discovered lease renewed at least once): still N heals, not 2N.
    await waitFor('a later round', async () => {
      const now = await discovered();
      return now.length === N && now.every((x) => !healed.some((h) => h.lastHeartbeat === x.lastHeartbeat));
    }, 20_000);

    const counts = [await selfHeals(a, 'reconcile'), await selfHeals(b, 'reconcile')];
    assert.equal(counts[0] + counts[1], N, `heals per process: ${counts.join(', ')}`);
    const [leader, follower] = (await isLeader(a)) ? [a, b] : [b, a];
    assert.equal(await isLeader(follower), false);
    assert.equal(await selfHeals(leader, 'reconcile'), N, 'every heal was the leader\'s');
    assert.ok(tools.every((t) => t.served === 0), 'the reconciler serves no traffic');

    // The leader goes away: the other process takes over the reconciling.
    await leader.kill('SIGTERM'); // a graceful stop also flushes its buffered log
    const late = await toolServer('late');
    servers.push(late);
    await loseRegistration(follower.control, late.name, late.url);
    await waitFor('the follower to heal', async () => (await selfHeals(follower, 'reconcile')) === 1, 20_000);
    await follower.kill('SIGTERM');

    const leaderLines = logEvents(leader.output(), 'selfheal');
    assert.equal(leaderLines.length, N);
    assert.deepEqual(leaderLines.map((l) => l.tool).sort(), tools.map((t) => t.name).sort());
    assert.ok(leaderLines.every((l) => l.trigger === 'reconcile'));
    assert.deepEqual(logEvents(follower.output(), 'selfheal').map((l) => l.tool), ['late']);
  });

  it('a proxy-only process heals through the registry endpoint; the registry counts the heal once', async () => {
    const config = { redis: { keyPrefix: 'split:' }, proxy: { feedPollMs: 200 }, discovery: { reconcileIntervalMs: 3_600_000 } };
    const registry = await startProcess('registry', { env: env(), config });
    procs.push(registry);
    const proxies = await Promise.all([
      startProcess('proxy', { env: { ...env(), SWITCHBOARD_REGISTRY: registry.control }, config }),
      startProcess('proxy', { env: { ...env(), SWITCHBOARD_REGISTRY: registry.control }, config }),
    ]);
    procs.push(...proxies);
    const t = await toolServer('omega');
    servers.push(t);

    // Registered and routed on both proxies first, so every answer below comes from the running tool.
    assert.equal((await api(registry.control, 'PUT', '/v1/tools/omega/backends/lost', { url: t.url })).status, 200);
    for (const p of proxies) {
      await waitFor('omega routed', async () => (await fetch(`${p.proxy}/omega/`)).status === 200);
    }
    assert.equal((await api(registry.control, 'DELETE', '/v1/tools/omega/backends/lost')).status, 204);

    const statuses: number[] = [];
    await waitFor('the heal', async () => {
      for (const p of proxies) statuses.push((await fetch(`${p.proxy}/omega/x`)).status);
      return (await selfHeals(registry, 'request')) === 1;
    }, 20_000);
    // Both proxies keep asking until every one of them routes the discovered backend.
    await waitFor('both proxies route the discovered backend', async () => {
      for (const p of proxies) statuses.push((await fetch(`${p.proxy}/omega/x`)).status);
      const entry = (await api(registry.control, 'GET', '/v1/tools/omega')).body;
      return entry.backends.length === 1 && entry.backends[0].source === 'discovered';
    }, 20_000);
    for (let i = 0; i < 5; i++) for (const p of proxies) statuses.push((await fetch(`${p.proxy}/omega/x`)).status);

    assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `statuses: ${statuses.join(',')}`);
    assert.equal(await selfHeals(registry, 'request'), 1);
    for (const p of proxies) assert.equal(await selfHeals(p, 'request'), 0, 'a proxy never counts a heal it did not write');
    await registry.kill('SIGTERM'); // flushes the buffered log
    const lines = logEvents(registry.output(), 'selfheal');
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0].tool, lines[0].address, lines[0].trigger], ['omega', `127.0.0.1:${t.port}`, 'request']);
    // A proxy probed, and the registry probed again before writing.
    assert.ok(t.silent >= 2, `probe connections: ${t.silent}`);
  });
});
