import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accepts, freePortRange, launch, serviceOf, SERVICE, type CliProcess } from '../launcher/helpers';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { RedisServer } from '../support/redis-server';
import { testRecorded } from '../observability/promtool';
import { SeriesRecorder, replayAlertTests, replayRoutesTests } from './replay-series';
import { waitFor, sleep } from '../support/wait';
import { logEvents } from '../support/logs';
import { metricValue, scrape } from '../support/metrics';
import { Traffic, type Answer } from '../support/traffic';

// The outage this project exists for, replayed on real processes: a real Redis, a `serve` process (registry
// and proxy) and a proxy-only process, N tools each started by `switchboard run`. Redis first restarts
// empty under them; then every launcher dies without deregistering and each tool is started again on its
// port by an "old runner" that never registers. Requests flow to every tool through both proxies all along.

const N = 20;
// Long enough for 20 servers to be killed and started again (a node process each, in parallel on a 2-core
// machine that runs other suites too) before their leases lapse: the scenario needs them up by then.
const TTL = 8;
const HEARTBEAT_MS = (TTL * 1000) / 3;
/** Tools that ask for a port while the table is being rebuilt. */
const NEWCOMERS = 8;
/**
 * Every launcher tries again within one heartbeat interval plus its 10 % jitter (a retry after a 503 waits
 * at most one interval), then its heartbeat and the test's poll make a round trip each.
 */
const REBUILD_BOUND_MS = HEARTBEAT_MS * 1.1 + 500;
/** How often the alert-relevant series are scraped in the second phase; one scrape is a minute for promtool. */
const SCRAPE_EVERY_MS = 250;

interface Tool {
  name: string;
  port: number;
  launcher: CliProcess;
  /** The server started without a launcher (phase two). */
  runner: ChildProcess | null;
  /** When its server stopped answering (its first server killed) and answered again (the runner listening). */
  downAt: number;
  upAt: number;
}

async function json(url: string, token?: string): Promise<any> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000) });
  return res.json();
}


function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const v = metricValue(text, name, labels);
  return Number.isNaN(v) ? 0 : v;
}

/** The old runner: the tool's server on its port, started with PORT alone. Resolves once it listens. */
function startRunner(port: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [SERVICE], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d.toString();
      if (out.includes('service: listening')) resolve(proc);
    });
    proc.stderr?.on('data', (d) => (out += d.toString()));
    proc.once('exit', (code) => reject(new Error(`runner on ${port} exited ${code}: ${out}`)));
  });
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

describe('the incident, replayed: 20 tools on a real Redis', function () {
  this.timeout(180_000);
  const redis = new RedisServer();
  let serve: SwitchboardProcess;
  let proxy: SwitchboardProcess;
  let traffic: Traffic | null = null;
  const tools: Tool[] = [];
  const admin = () => serve.adminToken;

  async function portsByTool(): Promise<Map<string, number[]>> {
    const body = await json(`${serve.control}/v1/ports`, admin());
    const map = new Map<string, number[]>();
    for (const a of body.assignments as Array<{ tool: string; port: number }>) map.set(a.tool, [...(map.get(a.tool) ?? []), a.port]);
    return map;
  }

  async function backendsByTool(): Promise<Map<string, Array<{ source: string; url: string }>>> {
    const body = await json(`${serve.control}/v1/tools`, admin());
    return new Map((body.tools as Array<{ tool: string; backends: Array<{ source: string; url: string }> }>).map((t) => [t.tool, t.backends]));
  }

  before(async function () {
    await redis.start();
    const env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' };
    const config = {
      redis: { keyPrefix: 'incident:' },
      leases: { defaultTtlSeconds: TTL, expiryIntervalMs: 250 },
      discovery: { reconcileIntervalMs: 1000 },
      ports: await freePortRange(N + NEWCOMERS + 4),
      proxy: { feedPollMs: 200 },
    };
    serve = await startProcess('serve', { env, config });
    proxy = await startProcess('proxy', { env: { ...env, SWITCHBOARD_REGISTRY: serve.control }, config });

    for (let i = 0; i < N; i++) {
      const name = `tool${String(i).padStart(2, '0')}`;
      tools.push({ name, port: 0, launcher: launch(serve.control, admin(), name, ['--ttl', String(TTL)]), runner: null, downAt: 0, upAt: 0 });
    }
    await waitFor('every tool registered by its launcher', async () => {
      const backends = await backendsByTool();
      return tools.every((t) => backends.get(t.name)?.some((b) => b.source === 'registered'));
    }, 120_000, 250);
    const ports = await portsByTool();
    for (const t of tools) t.port = ports.get(t.name)![0];
    assert.equal(new Set(tools.map((t) => t.port)).size, N);
    for (const p of [serve, proxy]) {
      await waitFor('both proxies route every tool', async () => {
        for (const t of tools) if ((await fetch(`${p.proxy}/${t.name}/`)).status !== 200) return false;
        return true;
      }, 30_000, 100);
    }
    // N loops per proxy, each going round the tools from its own: every round requests every tool through both.
    traffic = new Traffic({ proxies: [serve.proxy, proxy.proxy], tools: tools.map((t) => t.name), loops: N, pauseMs: 150, maxPerLoop: 2000, maxMs: 150_000 });
  });

  after(async () => {
    await traffic?.stop();
    for (const t of tools) {
      if (t.runner) t.runner.kill('SIGKILL');
      // A launcher still running (phase two did not get to it) takes its child along; one killed in phase
      // two had its child killed by the test, whose pid may have been reused since.
      if (t.launcher.proc.exitCode === null && t.launcher.proc.signalCode === null) await t.launcher.cleanup();
    }
    await serve?.kill('SIGKILL');
    await proxy?.kill('SIGKILL');
    await redis.stop();
  });

  it('Redis restarted empty while launchers run: every route and assignment back within one heartbeat interval, no port given to two tools, no live route dropped', async () => {
    const portsBefore = await portsByTool();
    const from = traffic!.answers.length;

    await redis.kill();
    await sleep(300);
    await redis.start();
    // New tools ask for ports while the launchers rebuild the table, all at once: the empty store's lowest
    // free ports are those the running tools listen on.
    const newcomers = Promise.all(
      Array.from({ length: NEWCOMERS }, (_, j) =>
        // Only a 503 (the store not back yet) is waited out; any other answer is the newcomer's, checked below.
        waitFor(`a port for newcomer ${j}`, async () => {
          const res = await fetch(`${serve.control}/v1/ports`, {
            method: 'POST',
            headers: { authorization: `Bearer ${admin()}`, 'content-type': 'application/json' },
            body: JSON.stringify({ tool: `newcomer${j}`, host: '127.0.0.1' }),
            signal: AbortSignal.timeout(5000),
          });
          const text = await res.text();
          return res.status === 503 ? null : { status: res.status, text };
        }, 20_000, 20),
      ),
    );
    const storeUpAt = await waitFor('the registry to reach Redis again', async () => {
      const body = await json(`${serve.control}/readyz`);
      return body.registry?.storeUp === true ? Date.now() : null;
    }, 20_000, 20);
    const restoredAt = await waitFor('every route and assignment restored', async () => {
      const [ports, backends] = await Promise.all([portsByTool(), backendsByTool()]);
      const ok = tools.every((t) => ports.get(t.name)?.includes(t.port) && backends.get(t.name)?.some((b) => b.source === 'registered'));
      return ok ? Date.now() : null;
    }, 30_000, 50);
    const answers = await newcomers;
    assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'every newcomer got a port');
    const newPorts = answers.map((a) => (JSON.parse(a.text) as { port: number }).port);
    // Traffic goes on a little after the rebuild: the proxies' carry-over of the old table must end cleanly.
    await sleep(1500);

    const rebuildMs = restoredAt - storeUpAt;
    console.log(`      rebuild: every route and assignment back ${rebuildMs} ms after the registry reached the empty Redis (heartbeat interval ${Math.round(HEARTBEAT_MS)} ms)`);
    assert.ok(rebuildMs <= REBUILD_BOUND_MS, `rebuilt ${rebuildMs} ms after the store was back: more than one heartbeat interval (+10 % jitter, +500 ms) = ${Math.round(REBUILD_BOUND_MS)} ms`);
    assert.ok(logEvents(serve.output(), 'feed.new_epoch').length >= 1, 'the store really lost its state (a new epoch)');

    // No port given to two tools: the newcomers got ports no running tool holds, every tool kept its own.
    const portsAfter = await portsByTool();
    const oldPorts = new Set(tools.map((t) => t.port));
    assert.deepEqual(newPorts.filter((p) => oldPorts.has(p)), [], `newcomers got ${newPorts.join(',')}; tools hold ${[...oldPorts].join(',')}`);
    assert.equal(new Set(newPorts).size, NEWCOMERS);
    for (const t of tools) assert.deepEqual(portsAfter.get(t.name), portsBefore.get(t.name), `${t.name} kept its port`);
    for (const t of tools) {
      const conflicts = t.launcher.events('heartbeat.failed').filter((l) => l.code === 'port_conflict');
      assert.deepEqual(conflicts, [], `${t.name}'s heartbeats were refused as a port conflict`);
    }

    // Proxies never dropped a live route while the table was rebuilt.
    const samples = traffic!.answers.slice(from);
    assert.ok(samples.length >= N * 2 * 5, `only ${samples.length} requests during the rebuild`);
    const bad = samples.filter((s) => s.status !== 200 || serviceOf(s.body)?.port !== tools.find((t) => t.name === s.tool)!.port);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${samples.length} requests failed or were misrouted during the rebuild`);

    // The newcomers never start: release their ports so the next phase starts from the launchers' table.
    for (const p of newPorts) {
      const res = await fetch(`${serve.control}/v1/ports/127.0.0.1/${p}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin()}` } });
      assert.equal(res.status, 204);
    }
  });

  it('every launcher killed, every tool restarted on its port without one: all healed once leases lapse, no request failed while a server was up, and the alert metrics show it', async () => {
    const before = await backendsByTool();
    // When each lease lapses, read before anything is killed (a later heartbeat only moves it later).
    const leaseEnds = new Map<string, number>();
    for (const t of tools) {
      const body = await json(`${serve.control}/v1/tools/${t.name}`, admin());
      assert.ok(body.backends?.length > 0, `${t.name} is registered before its launcher is killed`);
      leaseEnds.set(t.name, Math.min(...(body.backends as Array<{ expiresAt: string }>).map((b) => Date.parse(b.expiresAt))));
    }
    assert.ok(tools.every((t) => before.get(t.name)?.every((b) => b.source === 'registered')));
    const phaseStart = traffic!.answers.length;
    const phaseStartAt = Date.now();
    const textBefore = await scrape(serve);
    const healsBefore = { request: value(textBefore, 'switchboard_selfheal_total', { trigger: 'request' }), reconcile: value(textBefore, 'switchboard_selfheal_total', { trigger: 'reconcile' }) };

    // What the alert rules watch, scraped from both processes while it happens.
    const recorder = new SeriesRecorder([serve, proxy], tools.map((t) => t.name), SCRAPE_EVERY_MS, 600);

    const first: Answer[] = [];
    await Promise.all(
      tools.map(async (t) => {
        const childPid = t.launcher.events('child.started')[0]?.childPid as number;
        assert.equal(typeof childPid, 'number');
        // The launcher dies without a word to the registry, then the tool's server goes down with it. Its
        // server may be gone from the moment the launcher is (its watchdog sees its parent go): the server
        // counts as down from the kill, not from when the launcher's exit was seen.
        t.downAt = Date.now();
        t.launcher.proc.kill('SIGKILL');
        await t.launcher.exited;
        killPid(childPid);
        await waitFor(`${t.name}'s old server to be gone`, async () => !(await accepts(t.port)), 10_000, 10);
        t.runner = await startRunner(t.port);
        t.upAt = Date.now();
        // The first request of each tool after its restart, through each proxy.
        first.push(await traffic!.one(serve.proxy, t.name), await traffic!.one(proxy.proxy, t.name));
      }),
    );
    // The scenario needs the servers back before their leases lapse (a server still down when its lease is
    // gone is a dead tool, and its 503s are cached for discovery.negativeCacheMs); say so if the machine
    // was too slow for that, rather than blame the proxy.
    for (const t of tools) assert.ok(t.upAt < leaseEnds.get(t.name)!, `${t.name} restarted ${t.upAt - leaseEnds.get(t.name)!} ms after its lease lapsed`);

    const healedAt = await waitFor('every tool healed as a discovered backend', async () => {
      const backends = await backendsByTool();
      const ok = tools.every((t) => {
        const list = backends.get(t.name) ?? [];
        return list.length === 1 && list[0].source === 'discovered' && list[0].url === `http://127.0.0.1:${t.port}`;
      });
      return ok ? Date.now() : null;
    }, 45_000, 100);
    // Both proxies route the discovered backends; traffic goes on over them for a while.
    await waitFor('both proxies to hold the discovered backends', async () => {
      const texts = await Promise.all([scrape(serve), scrape(proxy)]);
      return texts.every((m) => value(m, 'switchboard_backends', { source: 'discovered' }) === N);
    }, 15_000, 100);
    await sleep(2000);
    await traffic!.stop();
    await recorder.stop();

    // No request failed (or reached another tool) while its server was up, the first after restart included.
    const samples = traffic!.answers.slice(phaseStart);
    const byName = new Map(tools.map((t) => [t.name, t]));
    const whileUp = samples.filter((s) => s.end < byName.get(s.tool)!.downAt || s.start >= byName.get(s.tool)!.upAt);
    const failed = whileUp.filter((s) => s.status !== 200 || serviceOf(s.body)?.port !== byName.get(s.tool)!.port);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${whileUp.length} requests failed while their server was up`);
    assert.equal(first.length, N * 2);
    assert.deepEqual(first.filter((s) => s.status !== 200), [], 'the first request of each tool after its restart');
    for (const t of tools) {
      for (const p of [serve.proxy, proxy.proxy]) {
        const after = whileUp.filter((s) => s.tool === t.name && s.proxy === p && s.start >= healedAt);
        assert.ok(after.length >= 1, `${t.name} was requested through proxy ${p} after the heal`);
      }
    }
    const excluded = samples.length - whileUp.length;

    // N heals, each counted once, by whichever trigger got there first; the proxy-only process counts none.
    const [serveText, proxyText] = await Promise.all([scrape(serve), scrape(proxy)]);
    const byTrigger = {
      request: value(serveText, 'switchboard_selfheal_total', { trigger: 'request' }) - healsBefore.request,
      reconcile: value(serveText, 'switchboard_selfheal_total', { trigger: 'reconcile' }) - healsBefore.reconcile,
    };
    const heals = byTrigger.request + byTrigger.reconcile;
    assert.equal(heals, N, `heals by trigger: ${JSON.stringify(byTrigger)}`);
    assert.equal(value(proxyText, 'switchboard_selfheal_total'), 0, proxyText.split('\n').filter((l) => l.includes('selfheal')).join('\n') + proxy.output().slice(-3000));
    // Only this phase's: while the launchers started, the reconciler may have found a child listening in
    // the moment before its launcher registered it (healed, then superseded by the registration).
    const lines = logEvents(serve.output(), 'selfheal').filter((l) => (l.time as number) >= phaseStartAt);
    assert.deepEqual(lines.map((l) => l.tool).sort(), tools.map((t) => t.name).sort(), 'one selfheal log line per tool');

    // What the alert rules watch shows it: SwitchboardSelfHealing (selfheal_total increased),
    // SwitchboardToolNotRegistering (discovered_backends{tool}), and on every proxy the discovered backends;
    // SwitchboardRoutesDropped and SwitchboardAssignmentsWithoutBackend stay quiet: no route was lost.
    for (const text of [serveText, proxyText]) {
      assert.equal(value(text, 'switchboard_backends', { source: 'discovered' }), N);
      assert.equal(value(text, 'switchboard_backends', { source: 'registered' }), 0);
      assert.equal(value(text, 'switchboard_routes'), N);
      assert.equal(value(text, 'switchboard_assignments_without_backend'), 0);
      for (const t of tools) assert.equal(value(text, 'switchboard_discovered_backends', { tool: t.name }), 1, t.name);
    }
    // switchboard_routes, scraped throughout on both processes: a lease that expired before self-preservation
    // engaged takes its route away until the tool is healed, so it dips by at most the leases expired, and
    // is N again at the end. The real rules, fed the recorded series, fire SwitchboardSelfHealing and
    // SwitchboardToolNotRegistering, never SwitchboardRoutesDropped.
    const scrapes = recorder.scrapes;
    const expired = logEvents(serve.output(), 'lease.expired').length;
    // A lease self-preservation holds is no live route either (its heartbeats stopped).
    const held = new Set(logEvents(serve.output(), 'lease.held').map((l) => l.tool)).size;
    const routes = scrapes.flatMap((s) => s.routes);
    const below = scrapes.filter((s) => s.routes.some((r) => r < N)).length;
    assert.ok(Math.min(...routes) >= N - expired - held, `switchboard_routes fell to ${Math.min(...routes)} with ${expired} leases expired and ${held} held: ${routes.join(' ')}`);
    assert.deepEqual(scrapes.at(-1)!.routes, [N, N], 'switchboard_routes back to N on both processes');
    const healedScrape = scrapes.findIndex((s) => s.heals.request + s.heals.reconcile === healsBefore.request + healsBefore.reconcile + N);
    assert.ok(healedScrape > 0, 'a scrape saw every heal counted');
    const r = await testRecorded(replayAlertTests(scrapes, tools.map((t) => t.name), healedScrape));
    assert.equal(r.code, 0, `promtool on the recorded series:\n${r.stdout}\n${r.stderr}`);
    const q = await testRecorded(replayRoutesTests(scrapes, SCRAPE_EVERY_MS));
    assert.equal(q.code, 0, `promtool on the recorded routes at their pace:\n${q.stdout}\n${q.stderr}`);
    const selfPreservation = Math.max(...scrapes.map((s) => s.selfPreservation));
    const withoutBackend = Math.max(...scrapes.flatMap((s) => s.assignmentsWithoutBackend));
    console.log(
      `      alerts: ${scrapes.length} scrapes of both processes (one a minute for promtool), switchboard_routes at least ${Math.min(...routes)} (below ${N} in ${below}; ${expired} leases expired, ${held} held), ${N} at the end; ` +
        `SwitchboardSelfHealing firing at scrape ${healedScrape}, SwitchboardToolNotRegistering for all ${N} tools at the last, SwitchboardRoutesDropped never; ` +
        `assignments_without_backend at most ${withoutBackend}`,
    );
    console.log(
      `      replay: ${N} heals (request ${byTrigger.request}, reconcile ${byTrigger.reconcile}) ${Math.round((healedAt - Math.max(...[...leaseEnds.values()])) / 100) / 10} s after the last lease lapsed; ` +
        `self-preservation engaged: ${selfPreservation === 1 ? 'yes' : 'no'}, leases expired ${expired}; ` +
        `${whileUp.length} requests while servers were up, all answered 200; ${excluded} excluded (server down)`,
    );
  });
});
