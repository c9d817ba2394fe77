// Fairness between tools: the latency of small requests to tool B while N clients read an endless stream
// from tool A through the same proxy, against the same requests without the streams. Each setting of
// proxy.relayBytesPerTurn given runs in a `serve` process of its own (embedded store, access log on); rounds
// alternate between them and, in each, go without the streams, then with them, and each figure is the
// median of its rounds, since other work on the machine moves from one minute to the next. Also: the
// streams' throughput (with B's requests, then alone), the proxy's event-loop delay (its own
// nodejs_eventloop_lag_* metrics, reset at each scrape), its CPU, B's latency straight to its backend in the
// same rounds (what the machine alone adds), and the proxy's CPU per small request without streams (wrk).
// Loopback only; every load is bounded in time.
// Usage: npm run build && npm run bench:fairness [-- --clients 50 --rounds 3 --seconds 5 --probes 4 --settings 65536,0 --framing chunked|length --profile]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { callApi } from '../test/support/api';
import { writeConfig } from '../test/support/process';
import { freePort } from '../test/support/redis-server';
import { startServe as startSharedServe, type Serve as BaseServe } from './switchboard-procs';
import { checkBuild, closedLoop, cpuSeconds, hasWrk, machine, median, ROOT, startChild, stopChild, switchboardArgs, switchboardEnv, waitHttp, wrkLoad, writeSection, type LoadResult } from './lib';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    probes: { type: 'string', default: '4' },
    'wrk-seconds': { type: 'string', default: '5' },
    settings: { type: 'string', default: '65536,0' },
    framing: { type: 'string', default: 'chunked' },
    profile: { type: 'boolean', default: false },
  },
});
const CLIENTS = Number(values.clients);
const ROUNDS = Math.max(1, Number(values.rounds));
const SECONDS = Number(values.seconds);
/** Closed-loop requests to B at once: enough samples for a p99 in a round even when each takes 300 ms. */
const PROBES = Number(values.probes);
const WRK_SECONDS = Number(values['wrk-seconds']);
/** proxy.relayBytesPerTurn of each switchboard compared (0: no bound). */
const SETTINGS = values.settings.split(',').map(Number);
/** How A frames its endless body: chunked (16 KiB chunks), or a Content-Length of 2^50 bytes. */
const FRAMING = values.framing === 'length' ? 'length' : 'chunked';
/** The streams run this long before B is measured: every client connected and reading. */
const STREAM_WARMUP_MS = 1500;
/** B straight to its backend, after the proxied probe, in every round. */
const DIRECT_MS = 2000;
const TOKEN = 'bench-admin-token-0123456789abcdef';
const PROFILE_DIR = path.join(ROOT, 'bench', '.out', 'profiles');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const settingName = (relay: number) => (relay === 0 ? 'relayBytesPerTurn 0 (no bound)' : `relayBytesPerTurn ${relay}`);

function log(msg: string): void {
  process.stderr.write(`[bench:fairness] ${msg}\n`);
}

interface Serve extends BaseServe {
  relay: number;
}

async function startServe(relay: number): Promise<Serve> {
  // Discovery off: the bench's backends are registered, nothing is to be found.
  const config = { proxy: { accessLog: true, relayBytesPerTurn: relay }, discovery: { enabled: false }, dataDir: null, log: { level: 'info' } };
  return { relay, ...(await startSharedServe(config, TOKEN, values.profile ? `fairness-${relay}` : undefined)) };
}

async function register(sb: Serve, tool: string, port: number): Promise<void> {
  const r = await callApi(sb.control, TOKEN, 'PUT', `/v1/tools/${tool}/backends/${tool}-1`, { url: `http://127.0.0.1:${port}`, ttl: 3600 });
  if (r.status >= 300) throw new Error(`registering ${tool}: ${r.status} ${JSON.stringify(r.body)}`);
  // The head of an answer is enough (A's body never ends): then the connection is cut.
  for (let i = 0; i < 200; i++) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: sb.proxyPort, path: `/${tool}/`, agent: false }, (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    await sleep(50);
  }
  throw new Error(`${tool} was never routed`);
}

/** The proxy's event-loop delay since the last scrape (prom-client resets its histogram at each one), in ms. */
async function eventLoopDelay(control: string): Promise<{ p50: number; p99: number; max: number }> {
  const text = await (await fetch(`${control}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p50: read('p50'), p99: read('p99'), max: read('max') };
}

interface Streams {
  /** Bytes each client read, and over how long. */
  done: Promise<{ bytes: number[]; seconds: number }>;
}

function startStreams(proxyPort: number, seconds: number): Streams {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'stream-clients.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', URL: `http://127.0.0.1:${proxyPort}/a/`, CLIENTS: String(CLIENTS), SECONDS: String(seconds) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ bytes: number[]; seconds: number }>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`stream clients: no result (${out})`));
      }
    });
  });
  return { done };
}

interface Round {
  streams: boolean;
  viaProxy: LoadResult;
  direct: LoadResult;
  delay: { p50: number; p99: number; max: number };
  /** Proxy CPU over the proxied probe, as a share of one core. */
  cpu: number;
  /** Streams only: MiB/s over all clients, and the slowest and fastest client's share of the mean. */
  mibPerSecond?: number;
  spread?: { min: number; max: number };
}

const probeB = (port: number, ms: number) => closedLoop({ concurrency: PROBES, maxRequests: 1_000_000, durationMs: ms, port }, () => ({ method: 'GET', path: '/b/' }));

async function round(sb: Serve, backendB: number, streams: boolean): Promise<Round> {
  const s = streams ? startStreams(sb.proxyPort, (STREAM_WARMUP_MS + DIRECT_MS) / 1000 + SECONDS + 1) : null;
  if (s) await sleep(STREAM_WARMUP_MS);
  await eventLoopDelay(sb.control);
  const cpu0 = cpuSeconds(sb.proc.pid!);
  const viaProxy = await probeB(sb.proxyPort, SECONDS * 1000);
  const cpu = (cpuSeconds(sb.proc.pid!) - cpu0) / viaProxy.seconds;
  const delay = await eventLoopDelay(sb.control);
  const direct = await probeB(backendB, DIRECT_MS);
  const r: Round = { streams, viaProxy, direct, delay, cpu };
  if (s) {
    const { bytes, seconds } = await s.done;
    const total = bytes.reduce((a, b) => a + b, 0);
    const mean = total / bytes.length;
    r.mibPerSecond = total / seconds / 2 ** 20;
    r.spread = { min: Math.min(...bytes) / mean, max: Math.max(...bytes) / mean };
  }
  log(`${streams ? `with ${CLIENTS} streams` : 'without streams'}: B p50 ${f1(viaProxy.p50ms)} ms p99 ${f1(viaProxy.p99ms)} ms (${viaProxy.requests} requests, ${viaProxy.errors} errors), direct p50 ${f1(direct.p50ms)} ms; event-loop delay p50 ${f1(delay.p50)} p99 ${f1(delay.p99)} max ${f1(delay.max)} ms; proxy CPU ${f1(cpu * 100)} %${r.mibPerSecond === undefined ? '' : `; streams ${f0(r.mibPerSecond)} MiB/s, client share ${r.spread!.min.toFixed(2)}..${r.spread!.max.toFixed(2)} of the mean`}`);
  return r;
}

/** The streams with nothing else to relay: their throughput, and the proxy's CPU per MiB relayed. */
async function streamsAlone(sb: Serve): Promise<Alone> {
  const cpu0 = cpuSeconds(sb.proc.pid!);
  const { bytes, seconds } = await startStreams(sb.proxyPort, SECONDS).done;
  const mib = bytes.reduce((a, b) => a + b, 0) / 2 ** 20;
  const r = { mibPerSecond: mib / seconds, cpuMsPerMiB: ((cpuSeconds(sb.proc.pid!) - cpu0) * 1000) / mib };
  log(`${CLIENTS} streams alone: ${f0(r.mibPerSecond)} MiB/s, proxy CPU ${r.cpuMsPerMiB.toFixed(2)} ms per MiB`);
  return r;
}

/** Small requests alone (wrk, 64 connections): the proxy's CPU per request, which bounding the streams must not raise. */
function smallRequestCost(sb: Serve): { perSecond: number; cpuUs: number } {
  const url = `http://127.0.0.1:${sb.proxyPort}/b/`;
  wrkLoad({ url, seconds: 1, connections: 64 });
  const cpu0 = cpuSeconds(sb.proc.pid!);
  const load = wrkLoad({ url, seconds: WRK_SECONDS, connections: 64 });
  const cpuUs = ((cpuSeconds(sb.proc.pid!) - cpu0) / Math.max(1, load.requests)) * 1e6;
  log(`small requests alone: ${f0(load.perSecond)} req/s, ${f0(cpuUs)} us CPU/request, ${load.errors} errors`);
  return { perSecond: load.perSecond, cpuUs };
}

interface Alone {
  mibPerSecond: number;
  cpuMsPerMiB: number;
}

/** One switchboard's figures, round after round. */
interface Runs {
  sb: Serve;
  rounds: Round[];
  alone: Alone[];
  costs: Array<{ perSecond: number; cpuUs: number }>;
}

async function main(): Promise<void> {
  checkBuild();
  if (values.profile) mkdirSync(PROFILE_DIR, { recursive: true });
  const started = new Date();
  const children: ChildProcess[] = [];
  try {
    const portA = await freePort();
    const portB = await freePort();
    children.push(startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'stream-backend.ts')], { PORT: String(portA), FRAMING }));
    children.push(startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'proxy-backend.ts')], { PORTS: String(portB) }));
    await waitHttp(`http://127.0.0.1:${portB}/`);
    const all: Runs[] = [];
    for (const relay of SETTINGS) {
      const sb = await startServe(relay);
      children.push(sb.proc);
      await register(sb, 'b', portB);
      await register(sb, 'a', portA);
      await probeB(sb.proxyPort, 1000); // warm-up
      all.push({ sb, rounds: [], alone: [], costs: [] });
    }
    for (let i = 0; i < ROUNDS; i++) {
      // Which setting goes first alternates too: the machine's load drifts within a round as well.
      for (const runs of i % 2 === 0 ? all : [...all].reverse()) {
        log(`round ${i + 1}, ${settingName(runs.sb.relay)}`);
        runs.rounds.push(await round(runs.sb, portB, false));
        runs.rounds.push(await round(runs.sb, portB, true));
        runs.alone.push(await streamsAlone(runs.sb));
        if (hasWrk() && WRK_SECONDS > 0) runs.costs.push(smallRequestCost(runs.sb));
      }
    }
    const text = report(started, all);
    process.stdout.write(`${text}\n`);
    writeSection(FRAMING === 'chunked' ? 'fairness' : 'fairness-length', text);
  } finally {
    for (const c of children.reverse()) await stopChild(c);
  }
}

const m = (rs: Round[], f: (r: Round) => number) => median(rs.map(f));

function row(relay: number, label: string, rs: Round[]): string {
  const streams = rs[0].mibPerSecond === undefined ? '-' : `${f0(m(rs, (r) => r.mibPerSecond!))} (${f2(m(rs, (r) => r.spread!.min))}..${f2(m(rs, (r) => r.spread!.max))})`;
  const delay = `${f1(m(rs, (r) => r.delay.p50))} / ${f1(m(rs, (r) => r.delay.p99))} / ${f1(m(rs, (r) => r.delay.max))}`;
  return `| ${relay} | ${label} | ${f1(m(rs, (r) => r.viaProxy.p50ms))} | ${f1(m(rs, (r) => r.viaProxy.p99ms))} | ${f1(m(rs, (r) => r.direct.p50ms))} | ${f1(m(rs, (r) => r.direct.p99ms))} | ${delay} | ${f0(m(rs, (r) => r.cpu * 100))} | ${streams} | ${rs.reduce((a, r) => a + r.viaProxy.errors, 0)} |`;
}

function summary(runs: Runs): string[] {
  const without = runs.rounds.filter((r) => !r.streams);
  const withS = runs.rounds.filter((r) => r.streams);
  const p50 = m(withS, (r) => r.viaProxy.p50ms) / m(without, (r) => r.viaProxy.p50ms);
  const p99 = m(withS, (r) => r.viaProxy.p99ms) / m(without, (r) => r.viaProxy.p99ms);
  const out = [
    `- ${settingName(runs.sb.relay)}: B's p50 with the streams ${f1(p50)}x its p50 without, p99 ${f1(p99)}x. Round by round (without / with), p50 ms: ${without.map((r, i) => `${f1(r.viaProxy.p50ms)} / ${f1(withS[i]?.viaProxy.p50ms ?? NaN)}`).join('; ')}.`,
    `  The streams alone: ${f0(median(runs.alone.map((a) => a.mibPerSecond)))} MiB/s, proxy CPU ${f2(median(runs.alone.map((a) => a.cpuMsPerMiB)))} ms per MiB relayed (rounds: ${runs.alone.map((a) => `${f0(a.mibPerSecond)} MiB/s at ${f2(a.cpuMsPerMiB)} ms`).join(', ')}).`,
  ];
  if (runs.costs.length > 0) {
    out.push(`  Small requests alone: ${f0(median(runs.costs.map((c) => c.perSecond)))} requests/s, proxy CPU ${f0(median(runs.costs.map((c) => c.cpuUs)))} us per request (rounds: ${runs.costs.map((c) => `${f0(c.cpuUs)} us`).join(', ')}).`);
  }
  return out;
}

function report(started: Date, all: Runs[]): string {
  return [
    `## Fairness: small requests to one tool while another streams (${FRAMING === 'chunked' ? 'a chunked stream' : 'a stream with a Content-Length'})`,
    '',
    `Command: \`npm run build && npm run bench:fairness -- --clients ${CLIENTS} --rounds ${ROUNDS} --seconds ${SECONDS} --probes ${PROBES} --wrk-seconds ${WRK_SECONDS} --settings ${SETTINGS.join(',')}${FRAMING === 'chunked' ? '' : ' --framing length'}\``,
    `Run: ${started.toISOString()}, ${machine()}. The proxies, both backends, the stream clients and the probes share the machine, with other work running on it: each figure is the median of ${ROUNDS} rounds, alternated between the settings and, within one, without the streams and then with them.`,
    `One \`serve\` process per setting of \`proxy.relayBytesPerTurn\` (dist/src/cli.js, embedded store, access log on to /dev/null; 0: no bound, as before the setting). Tool A: a backend answering every request with an endless body in 16 KiB writes, as fast as the socket takes them, ${FRAMING === 'chunked' ? 'chunked (a chunk a write)' : 'declared 2^50 bytes long (Content-Length)'}. Tool B: a backend answering 100 bytes. With the streams, ${CLIENTS} clients (a process of their own, one connection each) read A through the proxy as fast as they can; meanwhile ${PROBES} closed-loop clients send \`GET /b/\` for ${SECONDS} s, then the same for ${DIRECT_MS / 1000} s straight to B's backend (what the machine alone adds). Event-loop delay: the proxy's own \`nodejs_eventloop_lag_*\` over the proxied probe (a timer every 10 ms: an idle loop reads about 10 ms). Client share: the slowest and the fastest stream's bytes against their mean.`,
    '',
    '| relayBytesPerTurn | rounds | B via proxy p50 ms | B via proxy p99 ms | B direct p50 ms | B direct p99 ms | proxy event-loop delay p50 / p99 / max ms | proxy CPU % | streams MiB/s (client share) | B errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...all.flatMap((runs) => [row(runs.sb.relay, 'without streams', runs.rounds.filter((r) => !r.streams)), row(runs.sb.relay, `with ${CLIENTS} streams on A`, runs.rounds.filter((r) => r.streams))]),
    '',
    ...all.flatMap(summary),
    '',
    `Streams alone: the ${CLIENTS} clients for ${SECONDS} s with no requests to B, after each round. Small requests alone: wrk, 64 connections, \`GET /b/\` for ${WRK_SECONDS} s after a 1 s warm-up, after each round.`,
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
