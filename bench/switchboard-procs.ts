// Switchboard processes as the benches start them: from dist/, with the launch line's node flags and
// environment (bin/switchboard.js), on a real Redis.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { writeConfig } from '../test/support/process';
import { freePort } from '../test/support/redis-server';
import { ROOT, startChild, stopChild, switchboardArgs, switchboardEnv, waitHttp } from './lib';

export const TOKEN = 'bench-admin-token-0123456789abcdef';
export const PROFILE_DIR = path.join(ROOT, 'bench', '.out', 'profiles');

export interface Started {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

export interface SwitchboardProc extends Started {
  control: number;
  /** From spawn to a loaded table (process start, Redis connect, full snapshot). */
  readyMs: number;
  child: ChildProcess;
}

/** What startSwitchboardProxy may change besides the defaults. */
export interface ProxyStartOptions {
  profileName?: string;
  config?: string;
  /** More environment (e.g. the log level). */
  env?: Record<string, string>;
  /** The process's stdout (its log lines) piped to the caller, who must read it; else thrown away. */
  pipeStdout?: boolean;
  /** `--workers N`: a primary and N worker processes. */
  workers?: number;
}

/** The flags that make a process write a V8 CPU profile when it exits cleanly. */
export function profileFlags(name: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `${name}.cpuprofile`];
}

/** The routes the proxy has loaded; with --workers, the routes once every worker listens (the primary's /readyz says no more). */
async function readyRoutes(control: number, routes: number): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${control}/readyz`);
    const body = (await r.json()) as { ready?: boolean; proxy?: { routes?: number }; workers?: { wanted: number; listening: number } };
    if (body.workers) return body.ready && body.workers.listening === body.workers.wanted ? routes : null;
    return body.proxy?.routes ?? null;
  } catch {
    return null;
  }
}

/** `switchboard proxy` as operators run it, its table loaded from Redis. */
export async function startSwitchboardProxy(redisUrl: string, routes: number, accessLog: boolean, opts: ProxyStartOptions = {}): Promise<SwitchboardProc> {
  const port = await freePort();
  const control = await freePort();
  const t0 = Date.now();
  const { profileName, config } = opts;
  const profile = profileName ? profileFlags(profileName) : [];
  const env = switchboardEnv({
    REDIS_URL: redisUrl,
    SWITCHBOARD_PROXY_PORT: String(port),
    SWITCHBOARD_CONTROL_PORT: String(control),
    // info: the access log is written at info level.
    SWITCHBOARD_LOG_LEVEL: 'info',
    SWITCHBOARD_ACCESS_LOG: String(accessLog),
    ...opts.env,
  });
  const args = [...(config ? ['--config', config] : []), ...(opts.workers ? ['--workers', String(opts.workers)] : [])];
  const child = startChild([...profile, ...switchboardArgs('proxy', ...args)], env, opts.pipeStdout ? 'pipe' : 'ignore');
  const deadline = Date.now() + 120_000;
  while ((await readyRoutes(control, routes)) !== routes) {
    if (child.exitCode !== null) throw new Error(`switchboard proxy exited ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`switchboard proxy did not load ${routes} routes in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: child.pid!, port, control, readyMs: Date.now() - t0, child, stop: () => stopChild(child) };
}

export async function startRegistry(redisUrl: string, config: string): Promise<{ control: number; stop(): Promise<void> }> {
  const control = await freePort();
  const child = startChild(switchboardArgs('registry', '--config', config), switchboardEnv({
    REDIS_URL: redisUrl,
    SWITCHBOARD_CONTROL_PORT: String(control),
    SWITCHBOARD_ADMIN_TOKEN: TOKEN,
    SWITCHBOARD_LOG_LEVEL: 'warn',
  }));
  await waitHttp(`http://127.0.0.1:${control}/healthz`);
  return { control, stop: () => stopChild(child) };
}

/** `switchboard serve` (embedded store) with a --config of `config`, on free ports, once its control port answers. */
export interface Serve {
  proc: ChildProcess;
  control: string;
  proxyPort: number;
}

export async function startServe(config: Record<string, unknown>, token: string, profileName?: string): Promise<Serve> {
  const controlPort = await freePort();
  const proxyPort = await freePort();
  const profile = profileName ? profileFlags(profileName) : [];
  const proc = startChild(
    [...profile, ...switchboardArgs('serve', '--config', writeConfig(config))],
    switchboardEnv({ SWITCHBOARD_CONTROL_PORT: String(controlPort), SWITCHBOARD_PROXY_PORT: String(proxyPort), SWITCHBOARD_ADMIN_TOKEN: token }),
  );
  const sb: Serve = { proc, control: `http://127.0.0.1:${controlPort}`, proxyPort };
  await waitHttp(`${sb.control}/healthz`);
  return sb;
}
