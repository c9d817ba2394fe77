import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cliArgs, startProcess, type SwitchboardProcess } from '../support/process';
import { waitFor } from '../support/wait';
import { logLines, LogLine } from '../support/logs';

const ROOT = path.join(__dirname, '..', '..');
export const SERVICE = path.join(__dirname, 'fixtures', 'service.js');

/** A `switchboard run|heartbeat` process with its output captured; the child's stdout shows up in `stdout`. */
export interface CliProcess {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The launcher's JSON log lines (stderr), in order. */
  logs(): LogLine[];
  events(name: string): LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * For after hooks: SIGTERM, then SIGKILL if it lingers, and SIGKILL to every child (its process group)
   * and watchdog it reported, since a launcher killed outright with its watchdog leaves its child running.
   */
  cleanup(): Promise<void>;
  /**
   * The launcher dies without a word and leaves its child running: its watchdog SIGKILLed first, then the
   * launcher (what a launcher older than the watchdog left behind when it was killed). Answers the child's pid.
   */
  abandon(): Promise<number>;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

export function spawnCli(args: string[], env: Record<string, string>): CliProcess {
  const proc = spawn(process.execPath, cliArgs(args), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', SWITCHBOARD_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d) => (out += d.toString()));
  proc.stderr?.on('data', (d) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs = () => logLines(err);
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    logs,
    events: (name) => logs().filter((l) => l.event === name),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async cleanup() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      for (const l of logs()) {
        if (l.event !== 'child.started') continue;
        if (typeof l.watchdogPid === 'number') killQuietly(l.watchdogPid, 'SIGKILL');
        if (typeof l.childPid === 'number') killQuietly(-l.childPid, 'SIGKILL');
      }
    },
    async abandon() {
      const started = logs().filter((l) => l.event === 'child.started').at(-1);
      if (typeof started?.childPid !== 'number' || typeof started.watchdogPid !== 'number') throw new Error(`no child.started with both pids: ${err}`);
      process.kill(started.watchdogPid, 'SIGKILL');
      proc.kill('SIGKILL');
      await exited;
      return started.childPid;
    },
  };
}

/** `switchboard run --tool TOOL ... -- node service.js`, with the fixture's behaviour set through `env`. */
export function launch(registry: string, token: string, tool: string, flags: string[] = [], env: Record<string, string> = {}): CliProcess {
  return spawnCli(['run', '--tool', tool, '--registry', registry, '--token', token, ...flags, '--', process.execPath, SERVICE], env);
}

/** The port of a backend URL. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export interface ServiceInfo {
  pid: number;
  port: number;
  sawToken: boolean;
}

export async function serviceInfo(port: number): Promise<ServiceInfo> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as ServiceInfo;
}

/** The service that answered, as it says in its body (a proxied answer included); null for any other body. */
export function serviceOf(body: string): ServiceInfo | null {
  try {
    const info = JSON.parse(body) as Partial<ServiceInfo> | null;
    return typeof info?.pid === 'number' && typeof info.port === 'number' ? (info as ServiceInfo) : null;
  } catch {
    return null;
  }
}

export interface BackendJson {
  id: string;
  url: string;
  source: string;
  registeredAt: string;
  lastHeartbeat: string;
  ttl: number;
  leaseSecondsLeft: number;
  clientVersion?: string;
  instance?: string;
}

export interface ToolJson {
  tool: string;
  backends: BackendJson[];
  assignments: { host: string; port: number }[];
}

/** A new tool token for `tool`, issued with the admin token. */
export async function toolToken(sb: { control: string; adminToken: string }, tool: string): Promise<string> {
  const res = await api(sb, 'POST', `/v1/tools/${tool}/tokens`, {});
  if (res.status !== 201) throw new Error(`token for ${tool}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

export async function api(sb: { control: string; adminToken: string }, method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${sb.control}${p}`, {
    method,
    headers: { authorization: `Bearer ${sb.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(5000),
  });
}

export async function getTool(sb: SwitchboardProcess, tool: string): Promise<ToolJson | null> {
  const res = await api(sb, 'GET', `/v1/tools/${tool}`);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET /v1/tools/${tool}: ${res.status}`);
  return (await res.json()) as ToolJson;
}

export async function waitForBackend(sb: SwitchboardProcess, tool: string, timeoutMs = 15_000): Promise<BackendJson> {
  return waitFor(`a backend of ${tool}`, async () => (await getTool(sb, tool))?.backends[0], timeoutMs);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A block of ports nothing listens on now, below the kernel's ephemeral range (where freePort() and every
 * outgoing connection take theirs) and above the default assignment range (20000..29999, which other
 * suites' registries hand out): children started on them do not meet a port someone else holds.
 */
export async function freePortRange(size: number): Promise<{ min: number; max: number }> {
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    /* not Linux: keep the usual bound */
  }
  const low = 30_000;
  const high = Math.max(low + size, ephemeralLow) - size;
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = low + Math.floor(Math.random() * (high - low));
    const free = await Promise.all(Array.from({ length: size }, (_, i) => bindable(min + i)));
    if (free.every(Boolean)) return { min, max: min + size - 1 };
  }
  throw new Error(`no free block of ${size} ports in ${low}..${high + size}`);
}

/** Registry config for these tests: short expiry, and assignments from a port block of their own. */
export async function registryConfig(): Promise<Record<string, unknown>> {
  return { leases: { expiryIntervalMs: 250 }, ports: await freePortRange(32), proxy: { feedPollMs: 200 } };
}

/** The registry's JSON log lines (stdout of `serve`) of one event; a line still being written is left out. */

/**
 * The hooks every launcher suite needs: one `serve` for the suite (registryConfig() and `extra` on top), and
 * every launcher a test started (through `started`) cleaned up after it, with its output shown when it failed.
 * `serve()` answers the process once the suite's `before` has run.
 */
export function launcherSuite(extra: () => Record<string, unknown> = () => ({})): { serve(): SwitchboardProcess; started(p: CliProcess): CliProcess } {
  let sb: SwitchboardProcess | null = null;
  const running: CliProcess[] = [];
  before(async () => {
    sb = await startProcess('serve', { config: { ...(await registryConfig()), ...extra() }, env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const p of running) process.stderr.write(`launcher output:\n${p.stdout()}${p.stderr()}\n`);
    await Promise.all(running.splice(0).map((p) => p.cleanup()));
  });
  after(async () => {
    await sb?.kill('SIGTERM');
  });
  return {
    serve: () => sb!,
    started: (p) => {
      running.push(p);
      return p;
    },
  };
}
