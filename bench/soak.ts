// Soak: a registry and two proxies on one real redis-server for N minutes (default 10) at a fixed request
// rate over stable live routes, while 100 routes a second are registered and 100 deregistered, and Redis
// is killed twice and restarted EMPTY. Reports RSS and open descriptors of every switchboard process over
// time (with their slope), failed requests for live routes (target 0) and latency percentiles per minute.
// Usage: npm run bench:soak [-- --minutes 10 --rate 500 --tools 50 --churn 100 --ttl 30 --outage-seconds 5 --print-only]
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RegistryClient, type BackendView } from '../src/client/registry-client';
import { HeartbeatLoop } from '../src/launcher/heartbeat-loop';
import { newInstance } from '../src/launcher/identity';
import { silentLogger } from '../src/logger';
import { startProcess, type SwitchboardProcess } from '../test/support/process';
import { RedisServer } from '../test/support/redis-server';
import { machine, memoryMiB, percentile, ROOT, writeSection } from './lib';
import { waitFor } from '../test/support/wait';

const SAMPLE_MS = 5000;
/** Requests in flight beyond which the load generator counts a request as not sent instead of piling up. */
const MAX_IN_FLIGHT = 4000;
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * Churn tool k always registers port CHURN_PORT_BASE + k, as a restarted tool comes back on its assigned
 * port: every registration creates an assignment, so new ports each time would grow the table without
 * bound and show as a leak. Above the kernel's ephemeral range (32768-60999) and the assignment range, so
 * nothing listens there (fallback discovery probes them and finds nothing).
 */
const CHURN_PORT_BASE = 61_000;
const CHURN_PORT_MAX = 65_535;
/** A churn backend is deregistered this long after its registration: ~churn x lifetime routes come and go. */
const CHURN_LIFETIME_S = 5;

// ---------------------------------------------------------------------------------------------------------
// Child mode: the backends, in their own process so they do not take the load generator's event loop.

/** Listens on `count` ports the kernel picks (no race with other processes) and prints them as JSON. */
async function runBackends(count: number): Promise<void> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
    // Longer than the proxy's idle pool timeout: the proxy, not the backend, closes idle connections.
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const body = Buffer.from(String(port));
    ports.push(port);
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

/** The backend process: its ports once they all listen. */
function startBackends(count: number): Promise<{ proc: ChildProcess; ports: number[] }> {
  const proc = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'soak.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', SOAK_BACKENDS: String(count) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ proc, ports: JSON.parse(out) as number[] });
    });
    proc.once('exit', (code) => reject(new Error(`backend process exited (${code})`)));
  });
}

// ---------------------------------------------------------------------------------------------------------

interface Minute {
  latencies: number[];
  ok: number;
  liveFailures: number;
  notSent: number;
  regOk: number;
  deregOk: number;
  /** Churn writes answered otherwise, by status (0: no answer); 404 on a deregistration is counted apart. */
  writeFailed: Map<number, number>;
  deregGone: number;
  beatsOk: number;
  beatsFailed: number;
  lagMaxMs: number;
  minRoutes: number;
  events: string[];
}

interface LiveFailure {
  at: number;
  proxy: string;
  tool: string;
  kind: string;
}

interface Sample {
  at: number;
  rss: number[];
  fds: number[];
  /** Connections the load generator itself holds to each process: descriptors that come and go with load. */
  own: number[];
}

function newMinute(): Minute {
  return { latencies: [], ok: 0, liveFailures: 0, notSent: 0, regOk: 0, deregOk: 0, writeFailed: new Map(), deregGone: 0, beatsOk: 0, beatsFailed: 0, lagMaxMs: 0, minRoutes: Infinity, events: [] };
}

function openSockets(agent: http.Agent): number {
  const count = (m: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(m).reduce((a, l) => a + (l?.length ?? 0), 0);
  return count(agent.sockets) + count(agent.freeSockets);
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real launcher's client, counting what its heartbeats got, per minute of the run. */
class CountingClient extends RegistryClient {
  constructor(opts: ConstructorParameters<typeof RegistryClient>[0], private readonly minute: () => Minute) {
    super(opts);
  }

  override async heartbeat(tool: string, id: string, url: string, ttl?: number, instance?: string): Promise<BackendView> {
    try {
      const b = await super.heartbeat(tool, id, url, ttl, instance);
      this.minute().beatsOk++;
      return b;
    } catch (err) {
      this.minute().beatsFailed++;
      throw err;
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '500' },
      tools: { type: 'string', default: '50' },
      churn: { type: 'string', default: '100' },
      ttl: { type: 'string', default: '30' },
      'outage-seconds': { type: 'string', default: '5' },
      /** Print the section without writing bench/RESULTS.md (trial runs). */
      'print-only': { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const toolCount = Number(values.tools);
  const churnRate = Number(values.churn);
  const ttl = Number(values.ttl);
  const outageMs = Number(values['outage-seconds']) * 1000;
  for (const [k, v] of Object.entries({ minutes, rate, tools: toolCount, churn: churnRate, ttl, 'outage-seconds': outageMs })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number`);
  }
  const durationMs = minutes * 60_000;
  // Twice the churn routes alive at once: a tool's next backend comes long after its last one went.
  const churnTools = Math.max(1000, 2 * churnRate * CHURN_LIFETIME_S);
  if (CHURN_PORT_BASE + churnTools > CHURN_PORT_MAX) throw new Error(`--churn ${churnRate} needs more churn ports than ${CHURN_PORT_BASE}..${CHURN_PORT_MAX}`);
  const command = `npm run bench:soak -- --minutes ${minutes} --rate ${rate} --tools ${toolCount} --churn ${churnRate} --ttl ${ttl} --outage-seconds ${outageMs / 1000}`;
  const log = (msg: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

  const redis = await new RedisServer().start();
  const backends = await startBackends(toolCount);
  const ports = backends.ports;
  const processes: SwitchboardProcess[] = [];
  const agents: http.Agent[] = [];
  const loops: HeartbeatLoop[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    // Warnings only, no access log: every line is kept in this process's memory by startProcess.
    const env = { REDIS_URL: redis.url, SWITCHBOARD_LOG_LEVEL: 'warn', SWITCHBOARD_ACCESS_LOG: 'false' };
    const [registry, ...proxies] = await Promise.all([startProcess('registry', { env }), startProcess('proxy', { env }), startProcess('proxy', { env })]);
    processes.push(registry, ...proxies);
    const names = ['registry', 'proxy A', 'proxy B'];
    const tools = ports.map((port, i) => ({ tool: `soak${i}`, port }));

    // Minutes count from the start of the load; what happens during setup goes to a minute not reported.
    let tStart = 0;
    const setup = newMinute();
    const minuteList: Minute[] = [];
    const minuteOf = (t: number): Minute => {
      if (!tStart) return setup;
      const i = Math.min(Math.ceil(minutes) - 1, Math.max(0, Math.floor((t - tStart) / 60_000)));
      while (minuteList.length <= i) minuteList.push(newMinute());
      return minuteList[i];
    };
    const now = () => minuteOf(Date.now());
    const event = (what: string) => {
      now().events.push(`${what} at ${((Date.now() - tStart) / 1000).toFixed(0)} s`);
      log(what);
    };

    // Launchers: the real heartbeat loop (a beat every ttl/3, backoff after a failure) for each stable route.
    const client = new CountingClient({ registry: registry.control, token: registry.adminToken, timeoutMs: 5000 }, now);
    for (const { tool, port } of tools) {
      const loop = new HeartbeatLoop({ client, tool, id: 'b1', url: `http://127.0.0.1:${port}`, ttl, instance: newInstance(), logger: silentLogger() });
      loops.push(loop);
      loop.start();
    }
    for (const p of proxies) {
      for (const { tool } of tools) {
        await waitFor(`${tool} routed on ${p.proxy}`, async () => (await fetch(`${p.proxy}/${tool}/`)).status === 200, 30_000, 100);
      }
    }
    log(`${toolCount} stable routes live on both proxies; running ${minutes} min`);
    tStart = Date.now();

    // Load: open loop at `rate`, alternating proxies, round robin over the stable routes. Latency counts
    // from when the request was due, so a backlog (ours or the proxy's) shows instead of hiding.
    const proxyAgents = proxies.map(() => new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 3000 }));
    agents.push(...proxyAgents);
    const failures: LiveFailure[] = [];
    let sent = 0;
    let inFlight = 0;
    const fire = (n: number) => {
      const due = tStart + (n * 1000) / rate;
      const m = minuteOf(due);
      if (inFlight >= MAX_IN_FLIGHT) {
        m.notSent++;
        return;
      }
      const pi = n % proxies.length;
      const { tool, port } = tools[Math.floor(n / proxies.length) % tools.length];
      // Exactly one outcome per request, whichever of answer, error or abort comes first.
      let settled = false;
      const settle = (kind: string | null) => {
        if (settled) return;
        settled = true;
        inFlight--;
        if (kind === null) {
          m.ok++;
          m.latencies.push(Date.now() - due);
          return;
        }
        m.liveFailures++;
        if (failures.length < 10_000) failures.push({ at: Date.now() - tStart, proxy: names[pi + 1], tool, kind });
      };
      inFlight++;
      const req = http.get({ host: '127.0.0.1', port: proxies[pi].proxyPort, path: `/${tool}/soak/${n}`, agent: proxyAgents[pi], timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          settle(res.statusCode === 200 && body === String(port) ? null : `${res.statusCode} ${body.slice(0, 120).replace(/\s+/g, ' ')}`);
        });
        res.on('error', (err: NodeJS.ErrnoException) => settle(`${res.statusCode} body cut: ${err.code ?? err.message}`));
      });
      req.on('timeout', () => req.destroy(new Error('client timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => settle(`error ${err.code ?? err.message}`));
    };

    // Churn: registration i, and the deregistration of registration i - churn x lifetime, `churn` a second.
    const apiAgent = new http.Agent({ keepAlive: true, maxSockets: 32, timeout: 3000 });
    agents.push(apiAgent);
    let churnInFlight = 0;
    const oddAnswers = new Map<string, string>();
    const api = (method: string, apiPath: string, body: string | null, done: (status: number) => void) => {
      if (churnInFlight >= MAX_IN_FLIGHT) return done(-1);
      churnInFlight++;
      let settled = false;
      const settle = (status: number) => {
        if (settled) return;
        settled = true;
        churnInFlight--;
        done(status);
      };
      const headers: Record<string, string | number> = { authorization: `Bearer ${registry.adminToken}` };
      if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      const req = http.request({ host: '127.0.0.1', port: registry.controlPort, method, path: apiPath, agent: apiAgent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          // The first answer of each unexpected kind, to say in the report what it was.
          const key = `${method} ${status}`;
          if (status !== 200 && status !== 204 && status !== 404 && status !== 503 && !oddAnswers.has(key)) {
            oddAnswers.set(key, `${apiPath}: ${Buffer.concat(chunks).toString().slice(0, 300)}`);
          }
          settle(status);
        });
        res.on('error', () => settle(0));
      });
      req.on('timeout', () => req.destroy(new Error('client timeout')));
      req.on('error', () => settle(0));
      req.end(body ?? undefined);
    };
    const churnRoute = (i: number) => ({ path: `/v1/tools/churn${i % churnTools}/backends/c${i}`, url: `http://127.0.0.1:${CHURN_PORT_BASE + (i % churnTools)}` });
    const failedWrite = (m: Minute, status: number) => m.writeFailed.set(status, (m.writeFailed.get(status) ?? 0) + 1);
    let churned = 0;
    const churnOne = (i: number) => {
      const m = minuteOf(Date.now());
      const r = churnRoute(i);
      api('PUT', r.path, JSON.stringify({ url: r.url, ttl, clientVersion: 'soak' }), (s) => (s === 200 ? m.regOk++ : failedWrite(m, s)));
      const j = i - churnRate * CHURN_LIFETIME_S;
      if (j >= 0) {
        api('DELETE', churnRoute(j).path, null, (s) => (s === 204 ? m.deregOk++ : s === 404 ? m.deregGone++ : failedWrite(m, s)));
      }
    };

    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const tick = () => {
      const t = Date.now();
      if (t - tStart >= durationMs) return;
      const dueLoad = Math.floor(((t - tStart) * rate) / 1000);
      while (sent < dueLoad) fire(sent++);
      const dueChurn = Math.floor(((t - tStart) * churnRate) / 1000);
      while (churned < dueChurn) churnOne(churned++);
    };
    timers.push(setInterval(tick, 5));

    // Samples: RSS and descriptors of each switchboard process, routes each proxy holds, our own lag.
    const samples: Sample[] = [];
    const sample = async () => {
      const at = samples.length === 0 ? 0 : Date.now() - tStart;
      const live = processes.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
      if (live.length === processes.length) {
        samples.push({
          at,
          rss: processes.map((p) => memoryMiB(p.proc.pid!).rss),
          fds: processes.map((p) => fdCount(p.proc.pid!)),
          own: [apiAgent, ...proxyAgents].map(openSockets),
        });
      }
      const m = minuteOf(Date.now());
      m.lagMaxMs = Math.max(m.lagMaxMs, lag.max / 1e6);
      lag.reset();
      for (const p of proxies) {
        if (at === 0) break;
        try {
          const r = (await (await fetch(`${p.control}/readyz`, { signal: AbortSignal.timeout(2000) })).json()) as { proxy?: { routes?: number } };
          m.minRoutes = Math.min(m.minRoutes, r.proxy?.routes ?? NaN);
        } catch {
          /* counted as no sample */
        }
      }
    };
    await sample();
    timers.push(setInterval(() => void sample(), SAMPLE_MS));

    // Redis killed at 30 % and 70 % of the run, restarted empty after the outage: the proxies must keep
    // every live route (carry-over) while the launchers' heartbeats rebuild the table.
    const rebuilds: Array<{ killedAt: number; seconds: number | null }> = [];
    const storeHasAll = async (): Promise<boolean> => {
      const res = await fetch(`${registry.control}/v1/tools`, { headers: { authorization: `Bearer ${registry.adminToken}` }, signal: AbortSignal.timeout(3000) });
      if (res.status !== 200) return false;
      const body = (await res.json()) as { tools: Array<{ tool: string; backends: unknown[] }> };
      const have = new Set(body.tools.filter((t) => t.backends.length > 0).map((t) => t.tool));
      return tools.every((t) => have.has(t.tool));
    };
    for (const at of [0.3, 0.7]) {
      await sleep(Math.max(0, tStart + at * durationMs - Date.now()));
      const killedAt = Date.now() - tStart;
      await redis.kill();
      event('Redis killed');
      await sleep(outageMs);
      await redis.start();
      const up = Date.now();
      event('Redis restarted empty');
      let seconds: number | null = null;
      try {
        await waitFor('every stable route back in the store', storeHasAll, 60_000, 250);
        seconds = (Date.now() - up) / 1000;
        log(`all ${toolCount} stable routes back in the store ${seconds.toFixed(1)} s after the restart`);
      } catch (err) {
        log((err as Error).message);
      }
      rebuilds.push({ killedAt, seconds });
    }

    await sleep(Math.max(0, tStart + durationMs - Date.now()));
    for (const t of timers) clearInterval(t);
    await sample();
    log('load stopped; waiting for requests in flight');
    await waitFor('requests in flight to finish', async () => inFlight === 0 && churnInFlight === 0, REQUEST_TIMEOUT_MS + 5000, 50).catch(() => undefined);
    await Promise.all(loops.map((l) => l.stop()));
    const crashed = processes.map((p, i) => (p.proc.exitCode !== null || p.proc.signalCode !== null ? names[i] : null)).filter(Boolean);
    const badLogs = processes.map((p, i) => (/uncaught|unhandled|"level":60/i.test(p.output()) ? names[i] : null)).filter(Boolean);

    const body = report({
      command, minutes, rate, toolCount, churnRate, churnTools, ttl, outageMs, names, runMinutes: minuteList, samples, failures, rebuilds, crashed, badLogs,
      oddAnswers,
    });
    if (!values['print-only']) writeSection('soak', body);
    process.stdout.write(`${body}\n`);
  } finally {
    for (const t of timers) clearInterval(t);
    for (const l of loops) await l.stop();
    for (const a of agents) a.destroy();
    await Promise.all(processes.map((p) => p.kill('SIGKILL')));
    backends.proc.kill('SIGKILL');
    await redis.stop();
  }
}

interface ReportInput {
  command: string;
  minutes: number;
  rate: number;
  toolCount: number;
  churnRate: number;
  churnTools: number;
  ttl: number;
  outageMs: number;
  names: string[];
  runMinutes: Minute[];
  samples: Sample[];
  failures: LiveFailure[];
  rebuilds: Array<{ killedAt: number; seconds: number | null }>;
  crashed: unknown[];
  badLogs: unknown[];
  oddAnswers: Map<string, string>;
}

function report(r: ReportInput): string {
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : '-');
  const sum = (f: (m: Minute) => number) => r.runMinutes.reduce((a, m) => a + f(m), 0);
  const failedWrites = (m: Minute) => [...m.writeFailed.values()].reduce((a, b) => a + b, 0);
  const statusList = (m: Minute) => [...m.writeFailed.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${n}×${s === 0 ? 'no answer' : s === -1 ? 'not sent' : s}`).join(', ');
  const liveFailures = sum((m) => m.liveFailures);
  const ok = sum((m) => m.ok);

  const minuteRows = r.runMinutes.map((m, i) => {
    const sorted = [...m.latencies].sort((a, b) => a - b);
    return `| ${i + 1} | ${m.ok + m.liveFailures} | ${m.liveFailures} | ${m.notSent} | ${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 90))} | ${ms(percentile(sorted, 99))} | ${ms(sorted[sorted.length - 1] ?? NaN)} | ${m.regOk} / ${m.deregOk} | ${failedWrites(m) ? statusList(m) : 0}${m.deregGone ? `; ${m.deregGone} deregistrations 404 (lease gone with Redis)` : ''} | ${m.beatsOk} / ${m.beatsFailed} | ${Number.isFinite(m.minRoutes) ? m.minRoutes : '-'} | ${ms(m.lagMaxMs)} | ${m.events.join('; ') || ''} |`;
  });

  const xs = r.samples.map((s) => s.at / 60_000);
  const laterIdx = r.samples.map((s, i) => (s.at >= 60_000 ? i : -1)).filter((i) => i >= 0);
  const resourceRows = r.names.map((name, p) => {
    const rss = r.samples.map((s) => s.rss[p]);
    const fd = r.samples.map((s) => s.fds[p]);
    const later = (ys: number[]) => (laterIdx.length >= 2 ? slope(laterIdx.map((i) => xs[i]), laterIdx.map((i) => ys[i])) : NaN);
    const base = r.samples.map((s) => s.fds[p] - s.own[p]);
    const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
    return `| ${name} | ${rss[0]?.toFixed(1)} / ${Math.max(...rss).toFixed(1)} / ${rss[rss.length - 1]?.toFixed(1)} | ${f2(slope(xs, rss))} / ${f2(later(rss))} | ${fd[0]} / ${Math.max(...fd)} / ${fd[fd.length - 1]} | ${f2(slope(xs, fd))} / ${f2(later(fd))} | ${base[0]} / ${Math.max(...base)} / ${base[base.length - 1]} | ${f2(slope(xs, base))} / ${f2(later(base))} |`;
  });
  // RSS and descriptors over time: the last sample of each minute (and the first one).
  const timeline: Sample[] = r.samples.slice(0, 1);
  for (const s of r.samples.slice(1)) {
    const last = timeline[timeline.length - 1];
    const minute = (x: Sample) => Math.min(Math.ceil(r.minutes) - 1, Math.floor(x.at / 60_000));
    if (timeline.length > 1 && minute(last) === minute(s)) timeline[timeline.length - 1] = s;
    else timeline.push(s);
  }
  const timelineRows = timeline.map((s) => `| ${(s.at / 1000).toFixed(0)} | ${s.rss.map((v) => v.toFixed(1)).join(' | ')} | ${s.fds.join(' | ')} |`);

  const kinds = new Map<string, number>();
  for (const f of r.failures) kinds.set(`${f.proxy}: ${f.kind.replace(/soak\d+/g, 'soakN')}`, (kinds.get(`${f.proxy}: ${f.kind.replace(/soak\d+/g, 'soakN')}`) ?? 0) + 1);
  const failureLines = r.failures.length
    ? [
        '',
        'Failed requests for live routes, by kind:',
        '',
        ...[...kinds.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `- ${n} × ${k}`),
        '',
        `First ones (seconds into the run): ${r.failures.slice(0, 8).map((f) => `${(f.at / 1000).toFixed(1)} s ${f.proxy} ${f.tool} ${f.kind}`).join('; ')}`,
      ]
    : [];

  return [
    '## Soak: fixed request rate, route churn, Redis restarted empty twice',
    '',
    `Command: \`${r.command}\``,
    `Run: ${new Date().toISOString()}, ${machine()}. Everything shares the machine (load generator, 1 registry, 2 proxies, backends, redis-server), and other work ran on it at the same time: latencies are an upper bound.`,
    `Setup: one \`switchboard registry\` and two \`switchboard proxy\` processes (run from source through tsx, log level warn, access log off, otherwise default config) on one redis-server (no persistence). ${r.toolCount} stable routes (one backend each, in a separate backend process), heartbeated by the real launcher loop (src/launcher/heartbeat-loop.ts: every ttl/3 = ${(r.ttl / 3).toFixed(0)} s, backoff from 500 ms after a failure) through the registration API. Churn: ${r.churnRate} registrations and ${r.churnRate} deregistrations a second through the API (each churn backend lives ${CHURN_LIFETIME_S} s, over ${r.churnTools} tools, tool k always on port ${CHURN_PORT_BASE}+k, so routes appear and vanish while the assignments stay). Load: open loop at ${r.rate} requests/s (keep-alive, alternating the two proxies, only stable routes); a request fails unless it answers 200 with the body of the tool's own backend. Latency counts from when a request was due, so any backlog shows. Redis killed (SIGKILL) at 30 % and 70 % of the run and restarted empty ${r.outageMs / 1000} s later.`,
    '',
    `**Failed requests for live routes: ${liveFailures}** of ${ok + liveFailures} (target 0). Requests not sent because ${MAX_IN_FLIGHT} were in flight: ${sum((m) => m.notSent)}. Processes that died: ${r.crashed.length ? r.crashed.join(', ') : 'none'}. Fatal/uncaught lines in their logs: ${r.badLogs.length ? r.badLogs.join(', ') : 'none'}.`,
    `Redis outages: ${r.rebuilds.map((b) => `killed at ${(b.killedAt / 1000).toFixed(0)} s, every stable route back in the store ${b.seconds === null ? 'NOT within 60 s' : `${b.seconds.toFixed(1)} s after the restart`}`).join('; ')} (heartbeat interval ${(r.ttl / 3).toFixed(0)} s; the proxies keep the old table's routes for the default TTL meanwhile).`,
    `Churn writes: ${sum((m) => m.regOk)} registrations and ${sum((m) => m.deregOk)} deregistrations answered 200/204; ${sum(failedWrites)} other answers (expected only while Redis is down: 503), ${sum((m) => m.deregGone)} deregistrations 404 (lease lost with Redis).`,
    ...(r.oddAnswers.size ? ['', 'Churn answers other than 200/204/404/503, the first of each kind:', '', ...[...r.oddAnswers.entries()].map(([k, v]) => `- ${k}: \`${v.replace(/`/g, "'")}\``)] : []),
    ...failureLines,
    '',
    '### Per minute',
    '',
    'Requests: to stable live routes. Failed: of those (target 0). Not sent: generator saturated. Churn ok: registrations / deregistrations answered 200 / 204. Churn failed: other answers by status. Heartbeats: stable routes\' beats ok / failed. Min routes: fewest routes either proxy reported on /readyz in that minute (stable + churn). Lag: the load generator\'s worst event-loop delay.',
    '',
    '| minute | requests | failed (live routes) | not sent | p50 ms | p90 ms | p99 ms | max ms | churn ok (reg / dereg) | churn failed | heartbeats ok / failed | min routes | lag ms | events |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...minuteRows,
    '',
    '### Memory and descriptors',
    '',
    `Sampled every ${SAMPLE_MS / 1000} s from /proc (VmRSS, entries of /proc/<pid>/fd). Slope: least-squares line through the samples, per minute; "after minute 1" leaves out warm-up (JIT, heap sizing, pools filling). The first sample is taken before load and churn start. A proxy\'s descriptors include the load generator\'s keep-alive connections, whose number follows the load\'s burstiness (up to 64 per proxy); the last two columns subtract the connections the generator held at each sample (for the registry: the churn client\'s, not the launchers\' fetch pool), which is what a leak would show in.`,
    '',
    '| process | RSS MiB first / max / last | RSS slope MiB/min: all / after minute 1 | fds first / max / last | fds slope /min: all / after minute 1 | fds less the generator\'s connections: first / max / last | their slope /min: all / after minute 1 |',
    '|---|---|---|---|---|---|---|',
    ...resourceRows,
    '',
    `Over time (first sample, then the last of each minute):`,
    '',
    `| second | ${r.names.map((n) => `${n} RSS MiB`).join(' | ')} | ${r.names.map((n) => `${n} fds`).join(' | ')} |`,
    `|---|${r.names.map(() => '---|').join('')}${r.names.map(() => '---|').join('')}`,
    ...timelineRows,
  ].join('\n');
}

if (process.env.SOAK_BACKENDS) {
  void runBackends(Number(process.env.SOAK_BACKENDS));
} else {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
