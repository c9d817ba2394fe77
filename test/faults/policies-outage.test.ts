import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { adminHeaders, heartbeat, readyz } from './helpers';
import { waitFor, sleep } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';

/** The status a proxy answers for /web/ to a client with this User-Agent. */
async function statusFor(proxy: SwitchboardProcess, userAgent: string): Promise<number> {
  const res = await fetch(`${proxy.proxy}/web/`, { headers: { 'user-agent': userAgent }, signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

async function putBan(registry: SwitchboardProcess, id: string, body: unknown): Promise<Response> {
  return fetch(`${registry.control}/v1/blocks/${id}`, { method: 'PUT', headers: adminHeaders(registry), body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
}

/**
 * A ban is routing state: it reaches every proxy by the change feed, holds while Redis is away (the proxies
 * keep their last table), and survives Redis coming back empty (the proxies carry it over, the registry
 * writes its copy back), as routes do.
 */
describe('bans through the change feed and Redis outages (registry + 2 proxies)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let registry: SwitchboardProcess;
  let proxies: SwitchboardProcess[] = [];
  let web: Backend;

  before(async () => {
    // No persistence: a restart is a store that lost everything.
    redis = await new RedisServer().start();
    const env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' };
    // The carry-over after a loss lasts one default lease: short, so the test sees the copy written back take over.
    const config = { proxy: { feedPollMs: 200 }, leases: { defaultTtlSeconds: 5 } };
    [registry, ...proxies] = await Promise.all([startProcess('registry', { env, config }), startProcess('proxy', { env, config }), startProcess('proxy', { env, config })]);
    web = await startBackend('web');
  });
  after(async () => {
    await Promise.all([registry, ...proxies].map((p) => p?.kill()));
    await web?.close();
    await redis?.stop();
  });

  it('reaches both proxies, holds through an outage, and survives Redis restarting empty', async () => {
    assert.equal((await heartbeat(registry, 'web', web.port, 3600)).status, 200);
    for (const p of proxies) await waitFor('web routed', async () => (await statusFor(p, 'Friendly/1')) === 200);

    assert.equal((await putBan(registry, 'bot', { userAgent: '^Blocked/' })).status, 200);
    for (const p of proxies) await waitFor('the ban applied on the proxy', async () => (await statusFor(p, 'Blocked/1')) === 403, 5000, 20);
    for (const p of proxies) assert.equal(await statusFor(p, 'Friendly/1'), 200);

    await redis.kill();
    for (const p of proxies) await waitFor('the proxy to notice the store is away', async () => (await readyz(p)).proxy.storeUp === false, 10_000, 100);
    for (const p of proxies) {
      assert.equal(await statusFor(p, 'Blocked/1'), 403, 'the ban holds while the store is away');
      assert.equal(await statusFor(p, 'Friendly/1'), 200);
    }

    await redis.start();
    // Redis came back empty: the registry writes its copy (with the ban) back, heartbeats bring the route back.
    await waitFor('the ban back in the store', async () => {
      const res = await fetch(`${registry.control}/v1/blocks`, { headers: adminHeaders(registry), signal: AbortSignal.timeout(5000) });
      return res.status === 200 && ((await res.json()) as { blocks: Array<{ id: string }> }).blocks.some((b) => b.id === 'bot');
    }, 30_000, 200);
    await waitFor('web registered again', async () => (await heartbeat(registry, 'web', web.port, 3600)).status === 200, 20_000, 200);
    for (const p of proxies) await waitFor('proxy back on the store', async () => (await readyz(p)).proxy.storeUp === true, 20_000, 100);
    // Past the carry-over: what is applied now is what the store holds.
    await sleep(6000);
    for (const p of proxies) {
      assert.equal(await statusFor(p, 'Blocked/1'), 403, 'the ban survived the store losing its state');
      assert.equal(await statusFor(p, 'Friendly/1'), 200);
    }
  });
});
