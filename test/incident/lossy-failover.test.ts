import { callApi } from '../support/api';
import assert from 'node:assert/strict';
import { freePortRange, launch, type CliProcess } from '../launcher/helpers';
import { toolServer, type ToolServer } from '../discovery/helpers';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { SentinelCluster, command, commands } from '../support/sentinel';
import { waitFor, sleep } from '../support/wait';
import { metricValue } from '../support/metrics';

// The issue's worst case, on real processes: a Sentinel failover to a replica that missed the last writes.
// Everything below is written after the replica was cut off, so the failover loses it all: a tool token
// and the tool's launcher, a tool whose launcher then died (its server runs on, routed by discovery), and
// a revocation. Afterwards every tool must be routed again with its own port, its token must still work,
// the revoked token must stay revoked, and a new tool must not be handed a port a running tool listens on
// (before, tool t10 got t8's port and served t8's content).

const TTL = 6;


describe('a Sentinel failover to a replica that missed the last writes (tokens, assignments, a launcher-less tool, a revocation)', function () {
  this.timeout(120_000);
  let cluster: SentinelCluster;
  let serve: SwitchboardProcess;
  let launched: CliProcess | null = null;
  let orphanLauncher: CliProcess | null = null;
  let stray: ToolServer | null = null;

  before(async () => {
    cluster = await new SentinelCluster({ downAfterMs: 1000, failoverTimeoutMs: 3000 }).start();
  });
  after(async () => {
    await launched?.cleanup();
    await orphanLauncher?.cleanup();
    await stray?.close();
    await serve?.kill('SIGKILL');
    await cluster?.stop();
  });

  it('every tool routed again with its port and token, the revoked token stays revoked, and a new tool never gets a running tool\'s port', async () => {
    const env = { SWITCHBOARD_REDIS_SENTINELS: cluster.sentinelList, SWITCHBOARD_REDIS_SENTINEL_NAME: cluster.masterName, SWITCHBOARD_ACCESS_LOG: 'false' };
    const config = {
      leases: { defaultTtlSeconds: TTL, expiryIntervalMs: 250, lockTtlMs: 1500 },
      discovery: { reconcileIntervalMs: 1000, settleMs: 200 },
      registry: { snapshotIntervalMs: 250 },
      ports: await freePortRange(6),
      proxy: { feedPollMs: 200 },
    };
    serve = await startProcess('serve', { env, config });
    const admin = serve.adminToken;

    // Cut the replica off for good (it cannot authenticate to reconnect): what follows reaches the master only.
    const master = cluster.servers[0];
    await commands(master.port, [
      ['CONFIG', 'SET', 'requirepass', 'the-replica-cannot-reconnect'],
      ['CLIENT', 'KILL', 'TYPE', 'replica'],
    ]);
    const issue = async (tool: string) => (await callApi(serve.control, admin, 'POST', `/v1/tools/${tool}/tokens`, {})).body as { id: string; token: string };
    const t7 = await issue('t7');
    const t8 = await issue('t8');
    const spare = await issue('t7');
    assert.equal((await callApi(serve.control, admin, 'DELETE', `/v1/tools/t7/tokens/${spare.id}`)).status, 204);
    launched = launch(serve.control, t7.token, 't7', ['--ttl', String(TTL)]);
    orphanLauncher = launch(serve.control, t8.token, 't8', ['--ttl', String(TTL)]);
    await waitFor('t7 and t8 routed', async () => (await fetch(`${serve.proxy}/t7/`)).status === 200 && (await fetch(`${serve.proxy}/t8/`)).status === 200, 30_000, 100);
    const ports = (await callApi(serve.control, admin, 'GET', '/v1/ports')).body.assignments as Array<{ tool: string; port: number }>;
    const portOf = (tool: string) => ports.find((a) => a.tool === tool)!.port;
    // t8's launcher dies with its watchdog; its server runs on.
    await orphanLauncher.abandon();
    await waitFor('t8 routed by discovery', async () => {
      const t = await callApi(serve.control, admin, 'GET', '/v1/tools/t8');
      return t.status === 200 && (t.body.backends as Array<{ source: string }>).some((b) => b.source === 'discovered');
    }, 30_000, 100);
    await sleep(600); // the registry's copy is refreshed every 250 ms

    await master.kill();
    const killedAt = Date.now();
    const promoted = await cluster.waitFailover(master, 30_000);
    const lostKeys = (await command(promoted.port, ['HKEYS', 'sb:tokens'])) as string[];
    assert.ok(!lostKeys.includes(t7.id) && !lostKeys.includes(t8.id), 'the failover really lost the tokens');

    // Every tool back with its own port: t7 registered by its launcher, t8 discovered again.
    const backAt = await waitFor('t7 and t8 back in the store with their ports', async () => {
      const [a, b] = await Promise.all([callApi(serve.control, admin, 'GET', '/v1/tools/t7'), callApi(serve.control, admin, 'GET', '/v1/tools/t8')]);
      if (a.status !== 200 || b.status !== 200) return null;
      const ok =
        (a.body.backends as Array<{ source: string }>).some((x) => x.source === 'registered') &&
        (b.body.backends as Array<{ source: string }>).some((x) => x.source === 'discovered') &&
        (a.body.assignments as Array<{ port: number }>).some((x) => x.port === portOf('t7')) &&
        (b.body.assignments as Array<{ port: number }>).some((x) => x.port === portOf('t8'));
      return ok ? Date.now() : null;
    }, 40_000, 100);

    // A new tool asking for a port now never gets t7's or t8's (the write-back holds them, and a port something
    // listens on is never handed out).
    const t10 = await waitFor('a port for t10', async () => {
      const r = await callApi(serve.control, admin, 'POST', '/v1/ports', { tool: 't10', host: '127.0.0.1' });
      return r.status === 200 ? (r.body.port as number) : null;
    }, 20_000, 100);
    assert.ok(![portOf('t7'), portOf('t8')].includes(t10), `t10 got ${t10}, a running tool's port`);
    stray = await toolServer('t10', { port: t10 });

    // t8's URL answers with t8's content, t10's with t10's.
    const body8 = await (await fetch(`${serve.proxy}/t8/`)).text();
    assert.ok(!body8.includes('t10'), body8.slice(0, 200));
    await waitFor('t10 routed to its own server', async () => (await (await fetch(`${serve.proxy}/t10/`)).text()).includes('t10'), 20_000, 100);

    // Tokens: t7's (lost with the failover) still heartbeats; the revoked one stays revoked.
    const hb = await callApi(serve.control, t7.token, 'PUT', '/v1/tools/t7/backends/probe', { url: `http://127.0.0.1:${portOf('t7')}` });
    assert.equal(hb.status, 200, JSON.stringify(hb.body));
    assert.equal((await callApi(serve.control, spare.token, 'PUT', '/v1/tools/t7/backends/probe', { url: `http://127.0.0.1:${portOf('t7')}` })).status, 401);
    const refused = launched.events('heartbeat.failed').filter((l) => l.status === 401 || l.code === 'invalid_token');
    assert.deepEqual(refused, [], 't7\'s launcher was never refused');

    const metrics = await (await fetch(`${serve.control}/metrics`)).text();
    assert.equal(metricValue(metrics, 'switchboard_tools_lost'), 0);
    await waitFor('the write-back in the log', async () => /"event":"state.restored","source":"memory"/.test(serve.output()));
    console.log(`      lossy failover: t7 and t8 back ${backAt - killedAt} ms after the master was killed; t10 got ${t10} (t7 ${portOf('t7')}, t8 ${portOf('t8')})`);
  });
});
