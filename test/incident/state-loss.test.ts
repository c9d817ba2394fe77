import { callApi } from '../support/api';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { accepts, freePortRange, launch, type CliProcess } from '../launcher/helpers';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { RedisServer } from '../support/redis-server';
import { toolServer, type ToolServer } from '../discovery/helpers';
import { waitFor, sleep } from '../support/wait';
import { metricValue } from '../support/metrics';
import { Traffic } from '../support/traffic';

// The state-loss outages, on real processes: a `serve` process on a real Redis, tools under `switchboard
// run` with their own (signed) tool tokens, and tools whose launchers were SIGKILLed with their watchdogs (their servers run on,
// routed by discovery). Redis restarts empty, then twice within one TTL, then Redis and the registry
// restart empty together. After each, every tool must be routed again, stay routed once the proxies'
// carry-over of the old table has ended, keep its port, and a revoked token must stay revoked.

const TTL = 5;
const HEARTBEAT_MS = (TTL * 1000) / 3;
const RECONCILE_MS = 1000;
const LAUNCHED = ['ann', 'bob', 'cat'];
const ORPHANS = ['dan', 'eve', 'fay'];
const ALL = [...LAUNCHED, ...ORPHANS];

interface Tool {
  name: string;
  token: string;
  port: number;
  launcher: CliProcess;
}

/** Requests to every tool through the proxy, each about every 100 ms, bounded in count and time. */
function probeEveryTool(proxy: string): Traffic {
  return new Traffic({ proxies: [proxy], tools: ALL, loops: ALL.length, pauseMs: 100, maxPerLoop: 5000, maxMs: 60_000 });
}

describe('state loss: tokens, assignments and discovered tools survive Redis (and registry) restarts', function () {
  this.timeout(180_000);
  const redis = new RedisServer();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-state-'));
  const snapshotPath = path.join(dataDir, 'registry-snapshot.json');
  let serve: SwitchboardProcess;
  let revokedToken = '';
  const tools: Tool[] = [];
  let config: Record<string, unknown>;
  let env: Record<string, string>;
  const admin = () => serve.adminToken;

  async function ports(): Promise<Map<string, number[]>> {
    const res = await callApi(serve.control, admin(), "GET", "/v1/ports");
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as { assignments: Array<{ tool: string; port: number }> };
    const map = new Map<string, number[]>();
    for (const a of body.assignments) map.set(a.tool, [...(map.get(a.tool) ?? []), a.port]);
    return map;
  }

  async function sources(): Promise<Map<string, string[]>> {
    const body = (await callApi(serve.control, admin(), 'GET', '/v1/tools')).body as { tools: Array<{ tool: string; backends: Array<{ source: string }> }> };
    return new Map(body.tools.map((t) => [t.tool, t.backends.map((b) => b.source)]));
  }

  /** Every tool back in the store with its own port: launched ones registered, orphans discovered. */
  async function everyToolBack(): Promise<boolean> {
    const [p, s] = await Promise.all([ports(), sources()]);
    return tools.every((t) => p.get(t.name)?.includes(t.port) && (s.get(t.name) ?? []).includes(LAUNCHED.includes(t.name) ? 'registered' : 'discovered'));
  }

  /** Heartbeats refused by the registry (401 or any other refusal) since `since`, over every launcher still running. */
  function refusedHeartbeats(since: number): unknown[] {
    return tools
      .filter((t) => LAUNCHED.includes(t.name))
      .flatMap((t) => t.launcher.events('heartbeat.failed').filter((l) => (l.time as number) >= since && l.transient === false));
  }

  async function restartRedisEmpty(): Promise<void> {
    await redis.kill();
    await redis.start();
  }

  /** Waits until every tool is back, then past the end of the carry-over (one TTL): answers when it was back. */
  async function backAndBeyondCarryOver(lostAt: number): Promise<number> {
    const backAt = await waitFor('every tool back in the store', async () => ((await everyToolBack()) ? Date.now() : null), 30_000, 100);
    const carryEnds = lostAt + TTL * 1000 + 1500;
    await sleep(Math.max(0, carryEnds - Date.now()));
    assert.ok(await everyToolBack(), 'every tool still in the store after the carry-over');
    return backAt;
  }

  async function assertRevokedStaysRevoked(): Promise<void> {
    const res = await callApi(serve.control, revokedToken, 'PUT', '/v1/tools/ann/backends/intruder', { url: 'http://127.0.0.1:1' });
    assert.equal(res.status, 401, JSON.stringify(res.body));
  }

  before(async () => {
    await redis.start();
    env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false', SWITCHBOARD_SNAPSHOT_PATH: snapshotPath };
    config = {
      redis: { keyPrefix: 'loss:' },
      leases: { defaultTtlSeconds: TTL, expiryIntervalMs: 250, lockTtlMs: 1500 },
      discovery: { reconcileIntervalMs: RECONCILE_MS, settleMs: 200 },
      registry: { snapshotIntervalMs: 250 },
      ports: await freePortRange(ALL.length + 4),
      proxy: { feedPollMs: 200 },
    };
    serve = await startProcess('serve', { env, config });
    await waitFor('the key source in the log', async () => /"event":"tokens.signing","source":"admin-token"/.test(serve.output()));
    for (const name of ALL) {
      const issued = await callApi(serve.control, admin(), 'POST', `/v1/tools/${name}/tokens`, {});
      assert.equal(issued.status, 201);
      assert.match(issued.body.token, /^sbs_/, 'a signed token');
      tools.push({ name, token: issued.body.token, port: 0, launcher: launch(serve.control, issued.body.token, name, ['--ttl', String(TTL)]) });
    }
    const spare = await callApi(serve.control, admin(), 'POST', '/v1/tools/ann/tokens', {});
    revokedToken = spare.body.token;
    assert.equal((await callApi(serve.control, admin(), 'DELETE', `/v1/tools/ann/tokens/${spare.body.id}`)).status, 204);
    await assertRevokedStaysRevoked();

    await waitFor('every tool registered', async () => {
      const s = await sources();
      return ALL.every((t) => s.get(t)?.includes('registered'));
    }, 60_000, 100);
    const p = await ports();
    for (const t of tools) t.port = p.get(t.name)![0];
    // The orphans' launchers die without a word; their servers run on, and are healed by discovery.
    for (const t of tools.filter((x) => ORPHANS.includes(x.name))) {
      await t.launcher.abandon();
      assert.ok(await accepts(t.port), `${t.name}'s server outlives its launcher`);
    }
    await waitFor('the orphans routed by discovery', async () => {
      const s = await sources();
      return ORPHANS.every((t) => JSON.stringify(s.get(t)) === '["discovered"]');
    }, 30_000, 100);
    await waitFor('the durable copy written', async () => existsSync(snapshotPath), 10_000);
  });

  after(async () => {
    for (const t of tools) await t.launcher.cleanup();
    await serve?.kill('SIGKILL');
    await redis.stop();
  });

  it('(a) Redis restarted empty: tool tokens keep working, launcher-less tools stay routed past the carry-over, the revoked token stays revoked', async () => {
    const probe = probeEveryTool(serve.proxy);
    const lostAt = Date.now();
    await restartRedisEmpty();
    const backAt = await backAndBeyondCarryOver(lostAt);
    await probe.stop();
    console.log(`      (a) every tool back ${backAt - lostAt} ms after the restart (heartbeat ${Math.round(HEARTBEAT_MS)} ms, reconcile round ${RECONCILE_MS} ms); ${probe.served} requests served, ${probe.failures.length} failed`);
    assert.ok(serve.output().includes('"event":"state.restored"'), 'the registry wrote its copy back');
    // The tools the store lost were counted as lost (SwitchboardToolsLost) and are not any more.
    const metricsText = await (await fetch(`${serve.control}/metrics`)).text();
    assert.equal(metricValue(metricsText, 'switchboard_tools_lost'), 0, metricsText.split('\n').filter((l) => l.includes('lost')).join('\n'));
    assert.ok(/"event":"feed.new_epoch"[^\n]*"lostTools":[1-9]/.test(serve.output()), 'the loss counted lost tools');
    assert.deepEqual(refusedHeartbeats(lostAt), [], 'no heartbeat refused after the restart');
    assert.deepEqual(probe.failures.slice(0, 5), [], `${probe.failures.length} requests failed`);
    assert.ok(probe.served >= ALL.length * 20, `only ${probe.served} requests served`);
    await assertRevokedStaysRevoked();
  });

  it('(b) Redis restarted empty twice within one TTL: the same', async () => {
    const probe = probeEveryTool(serve.proxy);
    const lostAt = Date.now();
    await restartRedisEmpty();
    await sleep((TTL * 1000) / 2);
    const secondAt = Date.now();
    await restartRedisEmpty();
    const backAt = await backAndBeyondCarryOver(secondAt);
    await probe.stop();
    console.log(`      (b) every tool back ${backAt - secondAt} ms after the second of two restarts ${secondAt - lostAt} ms apart; ${probe.served} requests served, ${probe.failures.length} failed`);
    assert.deepEqual(refusedHeartbeats(lostAt), [], 'no heartbeat refused after the restarts');
    assert.deepEqual(probe.failures.slice(0, 5), [], `${probe.failures.length} requests failed`);
    const p = await ports();
    assert.deepEqual([...p.values()].flat().length, new Set([...p.values()].flat()).size, 'no port held twice');
    await assertRevokedStaysRevoked();
  });

  it('(c) Redis and the registry restarted empty together: the registry writes back its file; tokens, ports and discovered tools return', async () => {
    const controlPort = Number(new URL(serve.control).port);
    await serve.kill('SIGKILL');
    await redis.kill();
    await redis.start();
    const lostAt = Date.now();
    serve = await startProcess('serve', { env, config, controlPort });
    await waitFor('the pending write-back in the log', async () => /"event":"state.restore_pending","source":"file"/.test(serve.output()));
    const probe = probeEveryTool(serve.proxy);
    const backAt = await backAndBeyondCarryOver(lostAt);
    await probe.stop();
    // The new proxy starts with the empty store's table: requests before the write-back and the first
    // reconcile round are the documented window (404 no_such_tool, then the tools are routed).
    const late = probe.failures.filter((f) => f.start > backAt);
    console.log(`      (c) every tool back ${backAt - lostAt} ms after the restart; ${probe.failures.length} requests failed before that, ${late.length} after`);
    assert.deepEqual(late.slice(0, 5), [], `${late.length} requests failed after every tool was back`);
    assert.deepEqual(refusedHeartbeats(lostAt), [], 'no heartbeat refused after the restart');
    await assertRevokedStaysRevoked();
  });
});

describe('one host on the embedded store: a restart keeps ports, tokens and discovered tools (data directory)', function () {
  this.timeout(90_000);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-data-'));
  let serve: SwitchboardProcess | null = null;
  let orphan: CliProcess | null = null;

  after(async () => {
    await orphan?.cleanup();
    await serve?.kill('SIGKILL');
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`after a ${signal}: the same port, a token issued before still heartbeats, the launcher-less tool routed again`, async () => {
      const env = { SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_ACCESS_LOG: 'false' };
      const config = { discovery: { reconcileIntervalMs: RECONCILE_MS, settleMs: 200 }, registry: { snapshotIntervalMs: 250 }, ports: await freePortRange(4) };
      serve ??= await startProcess('serve', { env, config });
      await waitFor('the data-directory key in the log', async () => /"event":"tokens.signing","source":"data-dir"/.test(serve!.output()));
      const issued = await callApi(serve.control, serve.adminToken, 'POST', '/v1/tools/solo/tokens', {});
      assert.equal(issued.status, 201);
      if (!orphan) {
        // A tool whose launcher died: its server runs on, routed by discovery.
        orphan = launch(serve.control, issued.body.token, 'solo', ['--ttl', '5']);
        await waitFor('solo registered', async () => (await fetch(`${serve!.proxy}/solo/`)).status === 200, 30_000, 100);
        await orphan.abandon();
      }
      const before = (await callApi(serve.control, serve.adminToken, 'GET', '/v1/ports')).body.assignments as Array<{ tool: string; port: number }>;
      assert.equal(before.length, 1);
      await waitFor('the copy on disk', async () => existsSync(path.join(dataDir, 'registry-snapshot.json')), 10_000);
      await sleep(600); // two copy intervals: the file holds the token issued above

      const controlPort = Number(new URL(serve.control).port);
      await serve.kill(signal);
      serve = await startProcess('serve', { env, config, controlPort });
      await waitFor('solo routed again', async () => (await fetch(`${serve!.proxy}/solo/`)).status === 200, 30_000, 100);
      const after = (await callApi(serve.control, serve.adminToken, 'GET', '/v1/ports')).body.assignments as Array<{ tool: string; port: number }>;
      assert.deepEqual(after.map((a) => `${a.tool}:${a.port}`), before.map((a) => `${a.tool}:${a.port}`));
      const tool = (await callApi(serve.control, serve.adminToken, 'GET', '/v1/tools/solo')).body as { backends: Array<{ source: string }> };
      assert.deepEqual(tool.backends.map((b) => b.source), ['discovered']);
      const hb = await callApi(serve.control, issued.body.token, 'PUT', `/v1/tools/solo/backends/check-${signal}`, { url: `http://127.0.0.1:${before[0].port}` });
      assert.equal(hb.status, 200, JSON.stringify(hb.body));
      assert.equal((await callApi(serve.control, issued.body.token, 'DELETE', `/v1/tools/solo/backends/check-${signal}`)).status, 204);
    });
  }
});

describe('the embedded store without a data directory: a restart forgets the assignments, yet a new tool never gets a running tool\'s port (t8/t10)', function () {
  this.timeout(60_000);
  let serve: SwitchboardProcess | null = null;
  let t8: ToolServer | null = null;

  after(async () => {
    await t8?.close();
    await serve?.kill('SIGKILL');
  });

  it('t8 keeps running on its port; after the restart t10 is given the next free port and the occupied one is counted', async () => {
    const config = { ports: await freePortRange(4) };
    serve = await startProcess('serve', { config, env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
    const got = await callApi(serve.control, serve.adminToken, 'POST', '/v1/ports', { tool: 't8', host: '127.0.0.1' });
    assert.equal(got.status, 200);
    t8 = await toolServer('t8', { port: got.body.port as number });
    const controlPort = Number(new URL(serve.control).port);
    await serve.kill('SIGKILL');
    serve = await startProcess('serve', { config, env: { SWITCHBOARD_ACCESS_LOG: 'false' }, controlPort });
    const t10 = await callApi(serve.control, serve.adminToken, 'POST', '/v1/ports', { tool: 't10', host: '127.0.0.1' });
    assert.equal(t10.status, 200, JSON.stringify(t10.body));
    assert.notEqual(t10.body.port, t8.port, 't10 was handed the port t8 listens on');
    const metrics = await (await fetch(`${serve.control}/metrics`)).text();
    assert.equal(metricValue(metrics, 'switchboard_ports_occupied_total'), 1);
  });
});
