import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { command } from './redis-command';
import { RedisServer, freePort } from './redis-server';
import { sleep } from './wait';

export { command, commands } from './redis-command';

/** A `redis-server --sentinel` with its own config file (Sentinel rewrites it) and port. */
export class SentinelProcess {
  port = 0;
  private proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'sb-sentinel-'));

  constructor(
    private readonly masterName: string,
    private readonly masterPort: number,
    private readonly timing: { downAfterMs: number; failoverTimeoutMs: number },
  ) {}

  async start(): Promise<this> {
    this.port ||= await freePort();
    const file = path.join(this.dir, 'sentinel.conf');
    writeFileSync(
      file,
      [
        `port ${this.port}`,
        'bind 127.0.0.1',
        'daemonize no',
        `dir ${this.dir}`,
        'loglevel warning',
        `sentinel monitor ${this.masterName} 127.0.0.1 ${this.masterPort} 2`,
        `sentinel down-after-milliseconds ${this.masterName} ${this.timing.downAfterMs}`,
        `sentinel failover-timeout ${this.masterName} ${this.timing.failoverTimeoutMs}`,
        `sentinel parallel-syncs ${this.masterName} 1`,
        '',
      ].join('\n'),
    );
    const proc = spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += d.toString()));
    this.proc = proc;
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = null;
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`sentinel exited early (${proc.exitCode}): ${stderr}`);
      if ((await command(this.port, ['PING']).catch(() => '')) === 'PONG') return this;
      await sleep(50);
    }
    throw new Error(`sentinel on port ${this.port} did not answer PING within 10 s`);
  }

  /** The master address this sentinel currently announces, as "host:port". */
  async master(): Promise<string | null> {
    const reply = await command(this.port, ['SENTINEL', 'get-master-addr-by-name', this.masterName]);
    return Array.isArray(reply) && reply.length === 2 ? `${String(reply[0])}:${String(reply[1])}` : null;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SentinelClusterOptions {
  /** How long a silent master takes to be called down (Sentinel's down-after-milliseconds). */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  masterName?: string;
}

/**
 * 1 master, 1 replica and 3 sentinels (quorum 2), all real processes on loopback ports of their own.
 * `servers` keeps both data servers; which one is master changes with failovers (see currentMaster()).
 */
export class SentinelCluster {
  readonly masterName: string;
  readonly servers: RedisServer[] = [];
  readonly sentinels: SentinelProcess[] = [];
  private readonly timing: { downAfterMs: number; failoverTimeoutMs: number };

  constructor(opts: SentinelClusterOptions = {}) {
    this.masterName = opts.masterName ?? 'sbmaster';
    this.timing = { downAfterMs: opts.downAfterMs ?? 1000, failoverTimeoutMs: opts.failoverTimeoutMs ?? 3000 };
  }

  async start(): Promise<this> {
    const master = await new RedisServer().start();
    // A replica that was promoted keeps its own data; the sentinels reconfigure the survivors by themselves.
    const replica = await new RedisServer({ extraArgs: ['--replicaof', '127.0.0.1', String(master.port), '--repl-ping-replica-period', '1'] }).start();
    this.servers.push(master, replica);
    await this.waitReplicaLinked(master);
    for (let i = 0; i < 3; i++) this.sentinels.push(await new SentinelProcess(this.masterName, master.port, this.timing).start());
    // Sentinels learn about the replica and each other through the master: wait until all know both.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const known = await Promise.all(this.sentinels.map((s) => this.knows(s)));
      if (known.every(Boolean)) return this;
      await sleep(100);
    }
    throw new Error('the sentinels did not discover the replica and each other within 15 s');
  }

  private async knows(s: SentinelProcess): Promise<boolean> {
    const replicas = await command(s.port, ['SENTINEL', 'replicas', this.masterName]).catch(() => []);
    const peers = await command(s.port, ['SENTINEL', 'sentinels', this.masterName]).catch(() => []);
    return Array.isArray(replicas) && replicas.length === 1 && Array.isArray(peers) && peers.length === 2;
  }

  private async waitReplicaLinked(master: RedisServer): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const info = String(await command(master.port, ['INFO', 'replication']).catch(() => ''));
      if (/connected_slaves:1/.test(info) && /slave0:.*state=online/.test(info)) return;
      await sleep(50);
    }
    throw new Error('the replica did not link to the master within 10 s');
  }

  /** "host:port" list for SWITCHBOARD_REDIS_SENTINELS. */
  get sentinelList(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  get sentinelAddresses(): { host: string; port: number }[] {
    return this.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port }));
  }

  /** The data server the sentinels agree is master now (a majority of the live ones), or null. */
  async currentMaster(): Promise<RedisServer | null> {
    const votes = await Promise.all(this.sentinels.map((s) => s.master().catch(() => null)));
    for (const server of this.servers) {
      const n = votes.filter((v) => v === `127.0.0.1:${server.port}`).length;
      if (n >= 2) return server;
    }
    return null;
  }

  /** Waits until the sentinels announce a master other than `old`, and answers it. */
  async waitFailover(old: RedisServer, timeoutMs = 30_000): Promise<RedisServer> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = await this.currentMaster();
      if (m && m !== old) return m;
      await sleep(50);
    }
    throw new Error(`no failover away from port ${old.port} within ${timeoutMs} ms`);
  }

  /** Replication role of a data server as it says itself ("master" or "slave"), or null when down. */
  async role(server: RedisServer): Promise<string | null> {
    const info = await command(server.port, ['INFO', 'replication']).catch(() => null);
    return typeof info === 'string' ? (/role:(\w+)/.exec(info)?.[1] ?? null) : null;
  }

  async stop(): Promise<void> {
    await Promise.all(this.sentinels.map((s) => s.stop()));
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
