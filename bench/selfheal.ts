// Self-healing: how fast a tool restarted without its registration is routed again, and what the
// reconciler costs at fleet scale. Three parts, each on its own redis-server and switchboard process:
//  1. on-demand: the extra latency of the first request to a tool that runs on its assigned port without a
//     registration, against a warm request to the same tool (one tool at a time, then many at once);
//  2. the reconciler alone, no traffic at all: tools come up at random moments, the time until their route
//     appears (the discovered backend's change event), relative to the reconcile interval;
//  3. probe cost: 10,000 assignments of which 1 % are dead (9,900 HTTP listeners on 127.0.0.2 in one child
//     process): the registry process's CPU over several reconcile rounds.
// Usage: npm run build && npm run bench:selfheal [-- --tools 200 --interval 2000 --assignments 10000 --rounds 6 --cpu-interval 10000]
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/logger';
import { RedisStore } from '../src/registry/redis-store';
import type { ChangeEvent } from '../src/registry/types';
import { writeConfig } from '../test/support/process';
import { RedisServer, freePort } from '../test/support/redis-server';
import { cpuSeconds, machine, percentile, ROOT, startChild, waitHttp, writeSection } from './lib';

const { values } = parseArgs({
  options: {
    tools: { type: 'string', default: '200' },
    interval: { type: 'string', default: '2000' },
    assignments: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '6' },
    'cpu-interval': { type: 'string', default: '10000' },
  },
});
const TOOLS = Number(values.tools);
const INTERVAL = Number(values.interval);
const ASSIGNMENTS = Number(values.assignments);
const ROUNDS = Number(values.rounds);
const CPU_INTERVAL = Number(values['cpu-interval']);
const DEAD_EVERY = 100;

// Tools listen on a loopback address of their own, on ports below the ephemeral range: nothing else on the
// machine (other suites bind 127.0.0.1) competes for them.
const HOST = '127.0.0.2';
const PORT_BASE = 10_000;
const TOKEN = 'bench-admin-token-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

interface Sb {
  proc: ChildProcess;
  control: string;
  proxyPort: number;
}

async function startSb(verb: string, redisUrl: string, config: Record<string, unknown>): Promise<Sb> {
  const controlPort = await freePort();
  const proxyPort = await freePort();
  const proc = startChild([path.join(ROOT, 'dist', 'src', 'cli.js'), verb, '--config', writeConfig(config)], {
    REDIS_URL: redisUrl,
    SWITCHBOARD_CONTROL_PORT: String(controlPort),
    SWITCHBOARD_PROXY_PORT: String(proxyPort),
    SWITCHBOARD_ADMIN_TOKEN: TOKEN,
    SWITCHBOARD_LOG_LEVEL: 'warn',
    SWITCHBOARD_ACCESS_LOG: 'false',
  });
  await waitHttp(`http://127.0.0.1:${controlPort}/healthz`);
  return { proc, control: `http://127.0.0.1:${controlPort}`, proxyPort };
}

/** The listener child on `ports`; resolves once every listen settled. */
async function startListeners(ports: number[]): Promise<{ proc: ChildProcess; listening: number; failed: number[] }> {
  const spec: string[] = [];
  for (let i = 0; i < ports.length; ) {
    let j = i;
    while (j + 1 < ports.length && ports[j + 1] === ports[j] + 1) j++;
    spec.push(i === j ? String(ports[i]) : `${ports[i]}-${ports[j]}`);
    i = j + 1;
  }
  const proc = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'listeners.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LISTEN_HOST: HOST, LISTEN_PORTS: spec.join(',') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`listeners exited ${code}`)));
  });
  return { proc, ...(JSON.parse(line) as { listening: number; failed: number[] }) };
}

async function adminCall(sb: Sb, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sb.control}${p}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

function timedGet(port: number, p: string, agent: http.Agent): Promise<{ status: number; ms: number }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  });
}

function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

interface ExtraStats {
  tools: number;
  failed: number;
  coldP50: number;
  coldP99: number;
  warmP50: number;
  extraP50: number;
  extraP99: number;
  extraMax: number;
}

function stats(cold: number[], warm: number[], failed: number): ExtraStats {
  const extra = cold.map((c, i) => c - warm[i]).sort((a, b) => a - b);
  const c = [...cold].sort((a, b) => a - b);
  return {
    tools: cold.length,
    failed,
    coldP50: percentile(c, 50),
    coldP99: percentile(c, 99),
    warmP50: median(warm),
    extraP50: percentile(extra, 50),
    extraP99: percentile(extra, 99),
    extraMax: extra[extra.length - 1],
  };
}

/** Part 1: the first request after a missed registration, one tool at a time, then `tools` at once. */
async function onDemand(): Promise<{ sequential: ExtraStats; burst: ExtraStats }> {
  const redis = await new RedisServer().start();
  let sb: Sb | null = null;
  let listeners: ChildProcess | null = null;
  try {
    const n = TOOLS * 2;
    // The reconciler is kept out of it: only requests find these tools.
    sb = await startSb('serve', redis.url, { ports: { min: PORT_BASE, max: PORT_BASE + n + 10 }, discovery: { reconcileIntervalMs: 3_600_000 } });
    const ports: number[] = new Array(n);
    await eachLimited(Array.from({ length: n }, (_, i) => i), 16, async (i) => {
      ports[i] = (await adminCall(sb!, 'POST', '/v1/ports', { tool: `od${i}`, host: HOST })).port;
    });
    // The tools come up on their ports, and none registers.
    const l = await startListeners([...ports].sort((a, b) => a - b));
    listeners = l.proc;
    if (l.failed.length) throw new Error(`ports busy: ${l.failed.join(',')}`);
    const proxyPort = sb.proxyPort;

    const warmOf = async (tool: string, agent: http.Agent) => {
      const ms: number[] = [];
      for (let k = 0; k < 5; k++) ms.push((await timedGet(proxyPort, `/${tool}/`, agent)).ms);
      return median(ms);
    };

    // One at a time: nothing else in flight, the extra latency of the probe and the report alone.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) await timedGet(proxyPort, '/nope/', agent); // warm the client connection and JIT
    const seqCold: number[] = [];
    const seqWarm: number[] = [];
    let seqFailed = 0;
    for (let i = 0; i < TOOLS; i++) {
      const r = await timedGet(proxyPort, `/od${i}/`, agent);
      if (r.status !== 200) seqFailed++;
      seqCold.push(r.ms);
      await sleep(30); // the discovered backend reaches the proxy's table
      seqWarm.push(await warmOf(`od${i}`, agent));
    }
    agent.destroy();

    // Many tools at once (a fleet restarted without its launchers): every first request in flight together.
    const wide = new http.Agent({ keepAlive: true, maxSockets: TOOLS });
    // Client connections open beforehand: the warm requests they are compared with reuse theirs.
    await Promise.all(Array.from({ length: TOOLS }, () => timedGet(proxyPort, '/nope/', wide)));
    const burst = await Promise.all(Array.from({ length: TOOLS }, (_, j) => timedGet(proxyPort, `/od${TOOLS + j}/`, wide)));
    await sleep(500);
    const burstWarm: number[] = [];
    for (let j = 0; j < TOOLS; j++) burstWarm.push(await warmOf(`od${TOOLS + j}`, wide));
    wide.destroy();
    return {
      sequential: stats(seqCold, seqWarm, seqFailed),
      burst: stats(
        burst.map((r) => r.ms),
        burstWarm,
        burst.filter((r) => r.status !== 200).length,
      ),
    };
  } finally {
    listeners?.kill('SIGKILL');
    sb?.proc.kill('SIGKILL');
    await redis.stop();
  }
}

interface ReconcileOnly {
  tools: number;
  healed: number;
  p50: number;
  max: number;
}

/**
 * Brings tools up at random moments over `spreadMs` on their assigned ports (servers in this process) and
 * measures, per tool, the time from listening to the change event of its discovered backend: the moment
 * every proxy learns the route. No request is sent.
 */
async function healLatency(store: RedisStore, tools: Array<{ tool: string; port: number }>, spreadMs: number, timeoutMs: number): Promise<ReconcileOnly> {
  const healedAt = new Map<string, number>();
  const unsubscribe = await store.subscribe(
    (ev: ChangeEvent) => {
      for (const c of ev.changes) if (c.kind === 'backend.upsert' && c.backend.source === 'discovered' && !healedAt.has(c.backend.tool)) healedAt.set(c.backend.tool, Date.now());
    },
    () => undefined,
  );
  const servers: http.Server[] = [];
  try {
    const upAt = new Map<string, number>();
    await Promise.all(
      tools.map(async ({ tool, port }) => {
        await sleep(Math.random() * spreadMs);
        const server = http.createServer((_req, res) => res.end('ok'));
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
        upAt.set(tool, Date.now());
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (tools.some((t) => !healedAt.has(t.tool)) && Date.now() < deadline) await sleep(50);
    const delays = [...upAt].filter(([tool]) => healedAt.has(tool)).map(([tool, t]) => healedAt.get(tool)! - t).sort((a, b) => a - b);
    return { tools: tools.length, healed: delays.length, p50: percentile(delays, 50), max: delays[delays.length - 1] ?? NaN };
  } finally {
    await unsubscribe();
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  }
}

/** Part 2: no traffic; tools come up at random moments over three intervals; time until their route appears. */
async function reconcilerAlone(k = 20): Promise<ReconcileOnly> {
  const redis = await new RedisServer().start();
  let sb: Sb | null = null;
  let store: RedisStore | null = null;
  try {
    sb = await startSb('registry', redis.url, { ports: { min: PORT_BASE, max: PORT_BASE + k + 10 }, discovery: { reconcileIntervalMs: INTERVAL } });
    const tools: Array<{ tool: string; port: number }> = [];
    for (let i = 0; i < k; i++) tools.push({ tool: `rc${i}`, port: (await adminCall(sb, 'POST', '/v1/ports', { tool: `rc${i}`, host: HOST })).port });
    store = await RedisStore.connect({ url: redis.url, keyPrefix: 'sb:', commandTimeoutMs: 2000, logger: silentLogger() });
    return await healLatency(store, tools, 3 * INTERVAL, 3 * INTERVAL + 10_000);
  } finally {
    await store?.close();
    sb?.proc.kill('SIGKILL');
    await redis.stop();
  }
}

interface CpuRun {
  table: string;
  cpuPercent: number;
  /** How long one round takes (spread of the renewals one round writes), when it can be seen. */
  roundMs: number | null;
}

/** Part 3: the registry's CPU over ROUNDS reconcile intervals, for a table of ASSIGNMENTS with 1 % dead. */
async function probeCost(): Promise<{ runs: CpuRun[]; heal: { seconds: number; cpuSeconds: number; healed: number }; atScale: ReconcileOnly; listening: number; busy: number }> {
  const redis = await new RedisServer().start();
  const children: ChildProcess[] = [];
  const stores: RedisStore[] = [];
  const runs: CpuRun[] = [];
  try {
    const all = Array.from({ length: ASSIGNMENTS }, (_, i) => PORT_BASE + i);
    const live = all.filter((_, i) => i % DEAD_EVERY !== DEAD_EVERY - 1);
    const l = await startListeners(live);
    children.push(l.proc);
    const store = async (prefix: string) => {
      const s = await RedisStore.connect({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 5000, logger: silentLogger() });
      stores.push(s);
      return s;
    };
    const measure = async (pid: number): Promise<number> => {
      const c0 = cpuSeconds(pid);
      const t0 = Date.now();
      await sleep(ROUNDS * CPU_INTERVAL);
      return ((cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000)) * 100;
    };
    const config = (prefix: string, enabled = true) => ({
      redis: { keyPrefix: prefix },
      ports: { min: PORT_BASE, max: PORT_BASE + ASSIGNMENTS - 1 },
      discovery: { enabled, reconcileIntervalMs: CPU_INTERVAL },
    });

    // (a) The incident at fleet scale: 9,900 tools routed by discovery alone. Every round probes each of
    // them (they must be dropped when they stop answering) and renews the lease of those that answer.
    const a = await store('dis:');
    const now = Date.now();
    await eachLimited(all, 64, async (port, i) => {
      const r = await a.allocatePort(`t${i}`, HOST, { min: port, max: port }, now);
      if (!r.ok) throw new Error(`allocation of ${port} failed`);
    });
    const sbA = await startSb('registry', redis.url, config('dis:'));
    children.push(sbA.proc);
    const cpuStart = cpuSeconds(sbA.proc.pid!);
    const startedAt = Date.now();
    let healed = 0;
    let healDoneAt = 0;
    while (Date.now() - startedAt < 2 * CPU_INTERVAL + 120_000) {
      healed = (await a.snapshot()).backends.filter((b) => b.source === 'discovered').length;
      if (healed >= l.listening) {
        healDoneAt = Date.now();
        break;
      }
      await sleep(250);
    }
    // The first round starts one interval after the process did; the heal is what that round did.
    const heal = { seconds: (healDoneAt - startedAt - CPU_INTERVAL) / 1000, cpuSeconds: cpuSeconds(sbA.proc.pid!) - cpuStart, healed };
    const cpuA = await measure(sbA.proc.pid!);
    const snapA = await a.snapshot();
    const beats = snapA.backends.filter((b) => b.source === 'discovered').map((b) => b.lastHeartbeat);
    const last = Math.max(...beats);
    const inLastRound = beats.filter((t) => t > last - CPU_INTERVAL / 2);
    runs.push({ table: `${l.listening} discovered (probed and renewed every round) + ${ASSIGNMENTS - l.listening} dead`, cpuPercent: cpuA, roundMs: last - Math.min(...inLastRound) });
    // At that scale, with no traffic: 20 of the dead tools come up at random moments over two intervals.
    const dead = all.map((port, i) => ({ tool: `t${i}`, port })).filter((_, i) => i % DEAD_EVERY === DEAD_EVERY - 1);
    const atScale = await healLatency(a, dead.slice(0, 20), 2 * CPU_INTERVAL, 2 * CPU_INTERVAL + 30_000);
    sbA.proc.kill('SIGKILL');

    // (b) The normal fleet: 9,900 tools registered (leases long enough to need no heartbeat during the
    // measurement), 100 dead assignments: only those have no live backend, so only they are probed.
    const b = await store('reg:');
    await eachLimited(all, 64, async (port, i) => {
      if (i % DEAD_EVERY === DEAD_EVERY - 1 || l.failed.includes(port)) {
        await b.allocatePort(`t${i}`, HOST, { min: port, max: port }, now);
        return;
      }
      await b.upsertBackend({ tool: `t${i}`, id: 'r1', url: `http://${HOST}:${port}`, host: HOST, port, ttl: 3600, source: 'registered', now });
    });
    const sbB = await startSb('registry', redis.url, config('reg:'));
    children.push(sbB.proc);
    await sleep(CPU_INTERVAL / 2);
    runs.push({ table: `${l.listening} registered + ${ASSIGNMENTS - l.listening} dead (only the dead probed)`, cpuPercent: await measure(sbB.proc.pid!), roundMs: null });
    sbB.proc.kill('SIGKILL');

    // (c) The same table with discovery off: what the registry process costs without any reconciling.
    const sbC = await startSb('registry', redis.url, config('reg:', false));
    children.push(sbC.proc);
    await sleep(CPU_INTERVAL / 2);
    runs.push({ table: 'the same, discovery off (baseline: expiry, leadership, table feed)', cpuPercent: await measure(sbC.proc.pid!), roundMs: null });
    return { runs, heal, atScale, listening: l.listening, busy: l.failed.length };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const s of stores) await s.close();
    await redis.stop();
  }
}

async function main(): Promise<void> {
  const od = await onDemand();
  process.stdout.write(`on-demand: ${JSON.stringify(od)}\n`);
  const rc = await reconcilerAlone();
  process.stdout.write(`reconciler alone: ${JSON.stringify(rc)}\n`);
  const pc = await probeCost();
  process.stdout.write(`probe cost: ${JSON.stringify(pc)}\n`);

  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const odRow = (name: string, s: ExtraStats) =>
    `| ${name} | ${s.tools} | ${s.failed} | ${round1(s.coldP50)} | ${round1(s.coldP99)} | ${round1(s.warmP50)} | ${round1(s.extraP50)} | ${round1(s.extraP99)} | ${round1(s.extraMax)} | ${verdict(s.failed === 0 && s.extraP99 <= 300)} |`;
  const reconcileOk = rc.healed === rc.tools && rc.max <= INTERVAL;
  const steady = pc.runs[0];
  const body = [
    '## Self-healing: a tool restarted without its registration',
    '',
    `Command: \`npm run build && npm run bench:selfheal -- --tools ${TOOLS} --interval ${INTERVAL} --assignments ${ASSIGNMENTS} --rounds ${ROUNDS} --cpu-interval ${CPU_INTERVAL}\``,
    `Run: ${new Date().toISOString()}, ${machine()}. Redis, switchboard, the tools and the client share the machine.`,
    'Tools listen on 127.0.0.2 (HTTP, one child process); they hold a port assignment and never register. Probes are TCP connects (discovery.healthPath null, the default), budget 300 ms.',
    '',
    '### First request after a missed registration (on-demand, `serve`, reconciler out of the way)',
    '',
    'Extra latency = that first request minus the median of 5 warm requests to the same tool once its discovered backend is routed.',
    '',
    '| requests | tools | failed | first p50 ms | first p99 ms | warm p50 ms | extra p50 ms | extra p99 ms | extra max ms | target: extra <= 300 ms, none failed |',
    '|---|---|---|---|---|---|---|---|---|---|',
    odRow('one tool at a time', od.sequential),
    odRow(`${TOOLS} tools at once`, od.burst),
    '',
    '### The reconciler alone (no traffic, `registry` process)',
    '',
    `${rc.tools} tools come up at random moments over three reconcile intervals of ${INTERVAL} ms; time from each one listening to its discovered backend's change event (the moment every proxy learns the route): p50 ${rc.p50} ms (${round2(rc.p50 / INTERVAL)} interval), max ${rc.max} ms (${round2(rc.max / INTERVAL)} interval); ${rc.healed}/${rc.tools} healed. Target: within one interval: ${verdict(reconcileOk)}.`,
    '',
    `### Probe cost: ${ASSIGNMENTS} assignments, 1 % dead (\`registry\` process, reconcile interval ${CPU_INTERVAL} ms, ${ROUNDS} rounds)`,
    '',
    `CPU of the registry process (user + system, /proc) over ${ROUNDS} whole intervals, as % of one core. ${pc.listening} listeners${pc.busy ? ` (${pc.busy} ports were busy and count as dead)` : ''}.`,
    '',
    '| table | registry CPU, % of a core | one round takes | target: < 5 % |',
    '|---|---|---|---|',
    ...pc.runs.map((r) => `| ${r.table} | ${round2(r.cpuPercent)} | ${r.roundMs === null ? '-' : `${r.roundMs} ms`} | ${r.table.includes('baseline') ? '-' : verdict(r.cpuPercent < 5)} |`),
    '',
    `With no traffic at that scale (rounds of ${steady.roundMs} ms), ${pc.atScale.tools} dead tools coming up at random moments were routed p50 ${pc.atScale.p50} ms (${round2(pc.atScale.p50 / CPU_INTERVAL)} interval), max ${pc.atScale.max} ms (${round2(pc.atScale.max / CPU_INTERVAL)} interval) after they listened; ${pc.atScale.healed}/${pc.atScale.tools} healed: ${verdict(pc.atScale.healed === pc.atScale.tools && pc.atScale.max <= CPU_INTERVAL)}.`,
    '',
    `The heal itself: the first round healed ${pc.heal.healed} tools in ${round1(pc.heal.seconds)} s, ${round1(pc.heal.cpuSeconds)} CPU-seconds of the registry (start-up included). Steady state with the whole fleet routed by discovery: ${verdict(steady.cpuPercent < 5)}.`,
  ].join('\n');
  writeSection('selfheal', body);
  process.stdout.write(`${body}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
