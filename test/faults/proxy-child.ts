import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Backend } from '../../src/registry/types';
import type { ProxyStats } from './fixtures/proxy-process';
import { sleep } from '../support/wait';

const FIXTURE = path.join(__dirname, 'fixtures', 'proxy-process.ts');

/**
 * The parent's side of fixtures/proxy-process.ts: a real proxy process the test can inspect. It runs with
 * the open-file limit raised to the hard limit (a capacity test needs more than the usual 1024).
 */
export class ProxyChild {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: unknown) => void>();
  port = 0;

  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: { id?: number; op?: string }) => {
      if (m.id !== undefined) {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
      }
    });
  }

  static async start(proxyConfig: Record<string, unknown> = {}): Promise<ProxyChild> {
    const proc = spawn(
      '/bin/sh',
      ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, '--require', 'tsx/cjs', '--expose-gc', FIXTURE, JSON.stringify(proxyConfig)],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    const child = new ProxyChild(proc);
    child.port = await new Promise<number>((resolve, reject) => {
      proc.on('message', (m: { op?: string; port?: number }) => {
        if (m.op === 'listening') resolve(m.port!);
      });
      proc.once('exit', (code) => reject(new Error(`proxy process exited with ${code}`)));
    });
    return child;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private call<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) return reject(new Error('the proxy process is gone'));
      const timer = setTimeout(() => reject(new Error(`no answer to ${String(msg.op)}`)), 10_000);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m as T);
      });
      this.proc.send({ ...msg, id });
    });
  }

  async routes(backends: Backend[]): Promise<void> {
    await this.call({ op: 'routes', backends });
  }

  async stats(gc = false): Promise<ProxyStats> {
    return (await this.call<{ stats: ProxyStats }>({ op: 'stats', gc })).stats;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ op: 'exit', id: 0 });
    await Promise.race([exited, sleep(3000)]);
    if (this.alive) this.proc.kill('SIGKILL');
  }
}
