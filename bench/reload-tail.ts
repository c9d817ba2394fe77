// The tail of forwarded requests while a proxy does its periodic work: a full reload of its route table
// (its change-feed subscription killed in Redis, so it resyncs), a burst of heartbeats through a registry's
// API, and /metrics scrapes once a second, each right after a change of the table (as under real churn,
// where every scrape finds a new table). One `switchboard proxy` (from dist/) on a real Redis holding
// ROUTES routes, under a closed-loop load of CLIENTS keep-alive clients run by a process of their own
// (bench/tail-load.ts). The run is cut into phases of PHASE seconds: quiet, reload, quiet, heartbeats,
// quiet, metrics, ..., a last quiet one. A request counts in the phase its request was sent in; a reload's
// or a burst's window lasts until it ended, if that is later than its phase. Its p99 is compared with the
// p99 of the quiet phases of the same run: the machine is shared, so only ratios within one run mean much.
// Usage: npm run build && npm run bench:reload-tail [-- --routes 100000 --clients 16 --rounds 1 --phase 2 --heartbeats 1000 --section reload-tail --print-only]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { RedisStore } from '../src/registry/redis-store';
import { callApi } from '../test/support/api';
import { writeConfig } from '../test/support/process';
import { command } from '../test/support/redis-command';
import { RedisServer, freePort } from '../test/support/redis-server';
import { sleep, waitFor } from '../test/support/wait';
import { checkBuild, cpuSeconds, machine, percentile, ROOT, startChild, stopChild, waitHttp, writeSection } from './lib';
import { HIT_TOOL, routeOf, writeRoutes } from './proxy-table';
import { TOKEN, startRegistry, startSwitchboardProxy, type SwitchboardProc } from './switchboard-procs';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '100000' },
    clients: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '1' },
    phase: { type: 'string', default: '2' },
    heartbeats: { type: 'string', default: '1000' },
    section: { type: 'string', default: 'reload-tail' },
    'print-only': { type: 'boolean', default: false },
  },
});
const ROUTES = Number(values.routes);
const CLIENTS = Number(values.clients);
const ROUNDS = Math.max(1, Number(values.rounds));
const PHASE_MS = Number(values.phase) * 1000;
const HEARTBEATS = Math.min(ROUTES - 1, Number(values.heartbeats));
/** Heartbeats of a burst in flight at once. */
const BURST_CONCURRENCY = 50;
/** Load before the first phase: connections opened, code warm. */
const WARMUP_MS = 2000;
/** A reload or a burst that takes longer than this is reported as a failure of the run. */
const EVENT_TIMEOUT_MS = 60_000;
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');

type Kind = 'quiet' | 'reload' | 'heartbeats' | 'metrics';

interface Window {
  kind: Kind;
  from: number;
  to: number;
  /** What the event itself took (ms): the reload as the proxy logged it, the burst, the scrapes. */
  tookMs?: number;
  /** CPU seconds the proxy process used over the phase, and the phase's length in seconds. */
  cpu?: { used: number; seconds: number };
}

interface Answers {
  sentAt: number[];
  ms: number[];
  failed: number[];
}

function log(msg: string): void {
  process.stderr.write(`[bench:reload-tail] ${msg}\n`);
}

/** The proxy's JSON log lines, kept by event name (only the few the bench reads). */
class ProxyLog {
  readonly lines: Array<{ event: string; time: number; ms?: number }> = [];

  constructor(proc: SwitchboardProc) {
    createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      if (!line.includes('"feed.')) return;
      try {
        const o = JSON.parse(line) as { event?: string; time?: number; ms?: number };
        if (o.event && o.time) this.lines.push({ event: o.event, time: o.time, ms: o.ms });
      } catch {
        /* not a log line */
      }
    });
  }

  /** The first line of `event` logged at or after `since`. */
  after(event: string, since: number): { time: number; ms?: number } | undefined {
    return this.lines.find((l) => l.event === event && l.time >= since);
  }
}

/** Ids of the clients subscribed to a channel, from CLIENT LIST. */
async function subscriberIds(redisPort: number): Promise<Set<string>> {
  const list = String(await command(redisPort, ['CLIENT', 'LIST', 'TYPE', 'pubsub']));
  return new Set([...list.matchAll(/^id=(\d+) /gm)].map((m) => m[1]));
}

/** The load, in its own process, for at most `seconds`; stop() ends it and answers every answer. */
function startLoad(port: number, seconds: number): { stop(): Promise<Answers> } {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'tail-load.ts'), String(port), `/${HIT_TOOL}/`, String(CLIENTS), String(seconds), '5000000'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<Answers>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`load exited ${code}`);
        resolve(JSON.parse(out) as Answers);
      } catch (err) {
        reject(err);
      }
    });
  });
  return {
    stop: () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

interface Rig {
  redisPort: number;
  store: RedisStore;
  proxy: SwitchboardProc;
  proxyLog: ProxyLog;
  registry: string;
  backendPort: number;
  /** The registry's own feed subscribers: never killed, so only the proxy resyncs. */
  registrySubscribers: Set<string>;
}

async function quiet(): Promise<Window> {
  const from = Date.now();
  await sleep(PHASE_MS);
  return { kind: 'quiet', from, to: Date.now() };
}

/** Kills the proxy's feed subscription: it reconnects, resubscribes and reloads the whole table. */
async function reload(rig: Rig): Promise<Window> {
  const from = Date.now();
  const proxySubscribers = [...(await subscriberIds(rig.redisPort))].filter((id) => !rig.registrySubscribers.has(id));
  for (const id of proxySubscribers) await command(rig.redisPort, ['CLIENT', 'KILL', 'ID', id]);
  await sleep(PHASE_MS);
  const done = await waitFor('the proxy to log its reload', () => rig.proxyLog.after('feed.reload', from), EVENT_TIMEOUT_MS);
  const started = rig.proxyLog.after('feed.reconnected', from);
  return { kind: 'reload', from, to: Math.max(from + PHASE_MS, done.time), tookMs: done.ms ?? (started ? done.time - started.time : undefined) };
}

/** HEARTBEATS renewals through the registry's API, BURST_CONCURRENCY at a time. */
async function heartbeats(rig: Rig): Promise<Window> {
  const from = Date.now();
  let next = 1;
  const sender = async () => {
    while (next <= HEARTBEATS) {
      const { tool, url } = routeOf(next++, rig.backendPort);
      const r = await callApi(rig.registry, TOKEN, 'PUT', `/v1/tools/${tool}/backends/a`, { url, ttl: 3600 });
      if (r.status !== 200) throw new Error(`heartbeat of ${tool}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  };
  await Promise.all(Array.from({ length: BURST_CONCURRENCY }, sender));
  const took = Date.now() - from;
  await sleep(Math.max(0, PHASE_MS - took));
  return { kind: 'heartbeats', from, to: Math.max(from + PHASE_MS, from + took), tookMs: took };
}

/** A scrape of the proxy's /metrics once a second, each after one change of the table. */
async function metrics(rig: Rig, round: number): Promise<Window> {
  const from = Date.now();
  let scrapeMs = 0;
  for (let s = 0; s * 1000 < PHASE_MS; s++) {
    await sleep(Math.max(0, from + s * 1000 - Date.now()));
    const churn = routeOf(ROUTES + round * 100 + s, rig.backendPort);
    await rig.store.upsertBackend({ ...churn, id: 'a', ttl: 3600, source: 'registered', clientVersion: 'bench', now: Date.now() });
    await sleep(20); // the change reaches the proxy's table first
    const t = Date.now();
    const r = await fetch(`http://127.0.0.1:${rig.proxy.control}/metrics`);
    await r.text();
    scrapeMs = Math.max(scrapeMs, Date.now() - t);
  }
  await sleep(Math.max(0, from + PHASE_MS - Date.now()));
  return { kind: 'metrics', from, to: Date.now(), tookMs: scrapeMs };
}

interface Figures {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  failed: number;
}

/** The answers to requests sent inside the windows of one kind (a quiet phase minus any event's overlap). */
function figures(a: Answers, windows: Window[], kind: Kind): Figures {
  const mine = windows.filter((w) => w.kind === kind);
  const events = windows.filter((w) => w.kind !== 'quiet');
  const inside = (t: number) => mine.some((w) => t >= w.from && t < w.to) && (kind !== 'quiet' || !events.some((e) => t >= e.from && t < e.to));
  const ms: number[] = [];
  const failedAt = new Set(a.failed);
  let failed = 0;
  for (let i = 0; i < a.sentAt.length; i++) {
    if (!inside(a.sentAt[i])) continue;
    ms.push(a.ms[i]);
    if (failedAt.has(i)) failed++;
  }
  ms.sort((x, y) => x - y);
  const seconds = mine.reduce((s, w) => s + (w.to - w.from), 0) / 1000;
  return { requests: ms.length, perSecond: ms.length / seconds, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms[ms.length - 1], failed };
}

/** A phase, with the CPU the proxy used over it. */
async function measured(rig: Rig, phase: () => Promise<Window>): Promise<Window> {
  const t = Date.now();
  const c = cpuSeconds(rig.proxy.pid);
  const w = await phase();
  return { ...w, cpu: { used: cpuSeconds(rig.proxy.pid) - c, seconds: (Date.now() - t) / 1000 } };
}

async function runPhases(rig: Rig): Promise<Window[]> {
  const windows: Window[] = [];
  const run = async (phase: () => Promise<Window>) => windows.push(await measured(rig, phase));
  for (let round = 0; round < ROUNDS; round++) {
    await run(quiet);
    await run(() => reload(rig));
    log(`round ${round + 1}: reload ${f0(windows[windows.length - 1].tookMs ?? NaN)} ms`);
    await run(quiet);
    await run(() => heartbeats(rig));
    await run(quiet);
    await run(() => metrics(rig, round));
  }
  await run(quiet);
  return windows;
}

async function main(): Promise<void> {
  checkBuild();
  const started = new Date();
  const redis = await new RedisServer().start();
  const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'sb:', commandTimeoutMs: 10_000 });
  const cleanup: Array<() => Promise<void>> = [];
  try {
    const backendPort = await freePort();
    const backend = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'proxy-backend.ts')], { PORTS: String(backendPort) });
    cleanup.push(() => stopChild(backend, 'SIGKILL'));
    await waitHttp(`http://127.0.0.1:${backendPort}/`);
    let t = Date.now();
    await writeRoutes(store, 0, ROUTES, backendPort);
    log(`wrote ${f0(ROUTES)} routes in ${Date.now() - t} ms`);
    // debug: the proxy logs each reload (feed.reload) at that level; nothing per request.
    const proxy = await startSwitchboardProxy(redis.url, ROUTES, false, { env: { SWITCHBOARD_LOG_LEVEL: 'debug' }, pipeStdout: true });
    cleanup.push(() => proxy.stop());
    const proxyLog = new ProxyLog(proxy);
    const before = await subscriberIds(redis.port);
    const registry = await startRegistry(redis.url, writeConfig({ discovery: { enabled: false } }));
    cleanup.push(() => registry.stop());
    const registrySubscribers = await waitFor('the registry to subscribe', async () => {
      const now = await subscriberIds(redis.port);
      const added = new Set([...now].filter((id) => !before.has(id)));
      return added.size > 0 && added;
    }, 60_000);
    const rig: Rig = { redisPort: redis.port, store, proxy, proxyLog, registry: `http://127.0.0.1:${registry.control}`, backendPort, registrySubscribers };
    const seconds = (WARMUP_MS + PHASE_MS * (ROUNDS * 6 + 1)) / 1000 + 30 * ROUNDS;
    const load = startLoad(proxy.port, seconds);
    cleanup.push(() => load.stop().then(() => undefined));
    await sleep(WARMUP_MS);
    const windows = await runPhases(rig);
    // The load's own bound is generous (a reload's length varies); it ends with the last phase.
    const answers = await load.stop();
    const body = report(started, windows, answers);
    if (!values['print-only']) writeSection(values.section, body);
    process.stdout.write(`${body}\n`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await store.close();
    await redis.stop();
  }
}

function report(started: Date, windows: Window[], answers: Answers): string {
  const base = figures(answers, windows, 'quiet');
  const row = (label: string, kind: Kind) => {
    const f = figures(answers, windows, kind);
    const mine = windows.filter((w) => w.kind === kind);
    const took = mine.filter((w) => w.tookMs !== undefined).map((w) => f0(w.tookMs!));
    const ratio = kind === 'quiet' ? '1.0' : f1(f.p99 / base.p99);
    const cpu = (100 * mine.reduce((n, w) => n + (w.cpu?.used ?? 0), 0)) / mine.reduce((n, w) => n + (w.cpu?.seconds ?? 0), 0);
    return `| ${label} | ${f0(f.requests)} | ${f0(f.perSecond)} | ${f1(f.p50)} | ${f1(f.p99)} | ${ratio}x | ${f1(f.max)} | ${f.failed} | ${f0(cpu)} % | ${took.join(', ') || '-'} |`;
  };
  const cmd = `npm run bench:reload-tail -- --routes ${ROUTES} --clients ${CLIENTS} --rounds ${ROUNDS} --phase ${PHASE_MS / 1000} --heartbeats ${HEARTBEATS} --section ${values.section}`;
  return [
    `## Tail latency during a proxy's periodic work (${values.section})`,
    '',
    `\`${cmd}\` (${started.toISOString()}, ${machine()})`,
    '',
    `One \`switchboard proxy\` on Redis holding ${f0(ROUTES)} routes, ${CLIENTS} closed-loop clients to one tool; phases of ${PHASE_MS / 1000} s.`,
    `"took": the reload as the proxy logged it (read, build, swap), the ${f0(HEARTBEATS)}-heartbeat burst, the slowest scrape (ms). "proxy CPU": the proxy process's CPU over those phases, in % of one core.`,
    '',
    '| window | requests | req/s | p50 ms | p99 ms | p99 / quiet | max ms | failed | proxy CPU | took (ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    row('quiet (around the events)', 'quiet'),
    row('full reload (subscription killed)', 'reload'),
    row(`burst of ${f0(HEARTBEATS)} heartbeats (registry API)`, 'heartbeats'),
    row('/metrics scrape every second, after a change', 'metrics'),
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
