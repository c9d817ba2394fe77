import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.join(__dirname, '..');
export const RESULTS = path.join(ROOT, 'bench', 'RESULTS.md');

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
}

/**
 * A closed-loop load: `concurrency` loops each sending its next request when the last one answered.
 * Bounded by both a request count and a duration, whichever comes first.
 */
export async function closedLoop(
  opts: { concurrency: number; maxRequests: number; durationMs: number; port: number },
  request: (i: number) => { method: string; path: string; body?: string; headers?: Record<string, string> },
  /** Told of every answer: when its request was sent (epoch ms), how long it took, and whether it failed. */
  each?: (sentAt: number, ms: number, failed: boolean) => void,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  const start = process.hrtime.bigint();
  const deadline = Date.now() + opts.durationMs;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const r = request(i);
      const t0 = process.hrtime.bigint();
      const sentAt = Date.now();
      const req = http.request(
        { host: '127.0.0.1', port: opts.port, method: r.method, path: r.path, agent, headers: { ...(r.headers ?? {}), ...(r.body ? { 'content-length': Buffer.byteLength(r.body) } : {}) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            const failed = res.statusCode! >= 400;
            if (failed) errors++;
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            latencies.push(ms);
            each?.(sentAt, ms, failed);
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(r.body);
    });
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (sent < opts.maxRequests && Date.now() < deadline) await one(sent++);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, seconds, perSecond: latencies.length / seconds, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99) };
}

/**
 * The launch line of bin/switchboard.js (`NAME=${NAME:-value} ... exec node --flags ...`): its node flags and
 * environment defaults, so that a bench measures the process operators run (the young generation's size,
 * V8's heap growth and malloc's arenas there are memory-against-CPU choices: docs/BENCHMARKS.md).
 */
const LAUNCH = (() => {
  const line = readFileSync(path.join(ROOT, 'bin', 'switchboard.js'), 'utf8').split('\n', 2)[1] ?? '';
  const m = /^":" \/\/; ((?:[A-Z_]+=\$\{[A-Z_]+:-[^}\s]+\} )*)exec node((?: --\S+)*) "\$0" "\$@"$/.exec(line);
  if (!m) throw new Error(`bin/switchboard.js: unexpected launch line ${line}`);
  const env: Record<string, string> = {};
  for (const a of m[1].split(' ').filter(Boolean)) {
    const [, name, value] = /^([A-Z_]+)=\$\{[A-Z_]+:-([^}]+)\}$/.exec(a)!;
    env[name] = value;
  }
  return { flags: m[2].split(' ').filter(Boolean), env };
})();

export const SWITCHBOARD_NODE_FLAGS: readonly string[] = LAUNCH.flags;

/** A switchboard child's environment: the launch line's defaults under the bench's own settings. */
export function switchboardEnv(env: Record<string, string>): Record<string, string> {
  return { ...LAUNCH.env, ...env };
}

/** Node's arguments for the compiled CLI run as bin/switchboard.js runs it (node flags, then the CLI). */
export function switchboardArgs(...args: string[]): string[] {
  return [...SWITCHBOARD_NODE_FLAGS, path.join(ROOT, 'dist', 'src', 'cli.js'), ...args];
}

const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

/** Refuses to measure a build older than the source: the numbers would be of other code. */
export function checkBuild(): void {
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  }
  const newer = (dir: string): string | null => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const hit = e.isDirectory() ? newer(p) : e.name.endsWith('.ts') && statSync(p).mtimeMs > built ? p : null;
      if (hit) return hit;
    }
    return null;
  };
  const stale = newer(path.join(ROOT, 'src'));
  if (stale) throw new Error(`${path.relative(ROOT, stale)} is newer than dist/: run \`npm run build\` first`);
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** A node child; its stdout is thrown away unless `stdout` is 'pipe' (the caller reads it, e.g. its log lines). */
export function startChild(args: string[], env: Record<string, string>, stdout: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  return spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', stdout, 'inherit'] });
}

export async function waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
}

/** Replaces the section between `<!-- name:start -->` and `<!-- name:end -->` in bench/RESULTS.md. */
export function writeSection(name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n\nRatios are the figures to read: absolute numbers drift 20-40 % between runs on this shared 2-core machine.\n';
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function hasWrk(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

/**
 * Load from wrk (C, far cheaper per request than a Node client, so the server under test gets the CPU).
 * `script` is a wrk Lua script; wrk stops itself after `seconds`.
 */
type WrkOptions = { url: string; seconds: number; connections: number; threads?: number; script?: string };

function wrkArgs(opts: WrkOptions): { args: string[]; scriptFile: string | null } {
  const args = ['-t', String(opts.threads ?? 1), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency'];
  let scriptFile: string | null = null;
  if (opts.script) {
    scriptFile = path.join(os.tmpdir(), `sb-wrk-${process.pid}-${Date.now()}.lua`);
    writeFileSync(scriptFile, opts.script);
    args.push('-s', scriptFile);
  }
  return { args: [...args, opts.url], scriptFile };
}

function parseWrk(out: string, seconds: number): LoadResult {
  const ms = (label: string): number => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const took = Number(/requests in ([\d.]+)s/.exec(out)?.[1] ?? seconds);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { requests, errors, seconds: took, perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), p50ms: ms('50'), p99ms: ms('99') };
}

export function wrkLoad(opts: WrkOptions): LoadResult {
  const { args, scriptFile } = wrkArgs(opts);
  const r = spawnSync('wrk', args, { encoding: 'utf8', timeout: (opts.seconds + 30) * 1000 });
  if (scriptFile) rmSync(scriptFile, { force: true });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr || r.stdout}`);
  return parseWrk(r.stdout, opts.seconds);
}

/** wrkLoad, leaving the event loop free meanwhile (for sampling the process under load). */
export function wrkLoadAsync(opts: WrkOptions): Promise<LoadResult> {
  const { args, scriptFile } = wrkArgs(opts);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: (opts.seconds + 30) * 1000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (scriptFile) rmSync(scriptFile, { force: true });
      if (code !== 0) reject(new Error(`wrk failed: ${err || out}`));
      else resolve(parseWrk(out, opts.seconds));
    });
  });
}

/** The pids of a process and all its descendants, from /proc. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let children = '';
    try {
      children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8');
    } catch {
      /* gone */
    }
    for (const c of children.split(' ').filter(Boolean)) out.push(Number(c));
  }
  return out;
}

/** CPU seconds used so far by a process and its descendants (nginx: master and worker). */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + cpuSeconds(p);
    } catch {
      return sum;
    }
  }, 0);
}

/** Resident memory now and at its peak (VmRSS, VmHWM), in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}
