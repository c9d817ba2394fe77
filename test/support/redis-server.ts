import { spawn, ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './wait';

/** A free TCP port on loopback, as the kernel hands it out right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export interface RedisServerOptions {
  /** Keep an append-only file in the server's own directory, so a restart keeps the data. */
  appendOnly?: boolean;
  extraArgs?: string[];
}

/**
 * A real redis-server owned by one test: its own free loopback port and its own directory, never the
 * shared server on 6379. kill() and start() again keep the port, so clients can reconnect to it.
 */
export class RedisServer {
  port = 0;
  private proc: ChildProcess | null = null;
  readonly dir: string;

  constructor(private readonly opts: RedisServerOptions = {}) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== null;
  }

  async start(): Promise<this> {
    if (this.proc) return this;
    if (!this.port) this.port = await freePort();
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--save', '',
      '--appendonly', this.opts.appendOnly ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--daemonize', 'no',
      '--loglevel', 'warning',
      ...(this.opts.extraArgs ?? []),
    ];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`redis-server exited early (${code}): ${stderr}`))),
    );
    exited.catch(() => undefined);
    this.proc = proc;
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = null;
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await Promise.race([pingOnce(this.port), exited])) return this;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s`);
  }

  /** SIGKILL: the server vanishes as in a crash, with no chance to write anything. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
    this.proc = null;
  }

  /** SIGSTOP: the server hangs with its connections open, as a stuck or swapping host does. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Stop and forget the data directory's contents: the next start() comes up empty. */
  async wipe(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
