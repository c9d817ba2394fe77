import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './redis-server';
import { waitFor } from './wait';

const ROOT = path.join(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'src', 'cli.ts');

/** Runs the CLI from source through tsx, as `switchboard ARGS` would. */
export function cliArgs(args: string[]): string[] {
  return ['--require', 'tsx/cjs', CLI, ...args];
}

export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-config-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export interface SwitchboardProcess {
  proc: ChildProcess;
  controlPort: number;
  proxyPort: number;
  adminToken: string;
  control: string;
  proxy: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A real switchboard process (serve, proxy or registry) on free loopback ports, ready when this resolves.
 * `controlPort` pins the control port, so a test can restart a registry where its clients already point.
 */
export async function startProcess(
  verb: string,
  opts: { env?: Record<string, string>; config?: Record<string, unknown>; args?: string[]; controlPort?: number } = {},
): Promise<SwitchboardProcess> {
  const controlPort = opts.controlPort ?? (await freePort());
  const proxyPort = await freePort();
  const adminToken = 'test-admin-token-0123456789abcdef';
  const args = [verb, ...(opts.config ? ['--config', writeConfig(opts.config)] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, cliArgs(args), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      SWITCHBOARD_CONTROL_PORT: String(controlPort),
      SWITCHBOARD_PROXY_PORT: String(proxyPort),
      SWITCHBOARD_ADMIN_TOKEN: adminToken,
      SWITCHBOARD_LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d.toString()));
  proc.stderr?.on('data', (d) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const control = `http://127.0.0.1:${controlPort}`;
  await waitFor(`${verb} to answer /healthz`, async () => {
    if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${out}`);
    return (await fetch(`${control}/healthz`)).ok;
  }, 20_000);
  return {
    proc,
    controlPort,
    proxyPort,
    adminToken,
    control,
    proxy: `http://127.0.0.1:${proxyPort}`,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

/** One run of the CLI to its end (killed after 30 s): its exit code and what it wrote. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, cliArgs(args), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d.toString()));
    proc.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
