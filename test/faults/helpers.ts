import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { SwitchboardProcess } from '../support/process';
import { sleep } from '../support/wait';

export function adminHeaders(p: SwitchboardProcess): Record<string, string> {
  return { authorization: `Bearer ${p.adminToken}`, 'content-type': 'application/json' };
}

/** PUT /v1/tools/{tool}/backends/b1: a launcher's heartbeat. */
export function heartbeat(registry: SwitchboardProcess, tool: string, port: number, ttl: number): Promise<Response> {
  return fetch(`${registry.control}/v1/tools/${tool}/backends/b1`, {
    method: 'PUT',
    headers: adminHeaders(registry),
    body: JSON.stringify({ url: `http://127.0.0.1:${port}`, ttl }),
    signal: AbortSignal.timeout(10_000),
  });
}

export function allocatePort(registry: SwitchboardProcess, tool: string): Promise<Response> {
  return fetch(`${registry.control}/v1/ports`, {
    method: 'POST',
    headers: adminHeaders(registry),
    body: JSON.stringify({ tool, host: '127.0.0.1' }),
    signal: AbortSignal.timeout(10_000),
  });
}

/** Tools that have at least one backend, as the registry lists them. */
export async function toolsWithBackends(registry: SwitchboardProcess): Promise<Set<string>> {
  const res = await fetch(`${registry.control}/v1/tools`, { headers: adminHeaders(registry), signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET /v1/tools: ${res.status}`);
  const body = (await res.json()) as { tools: Array<{ tool: string; backends: unknown[] }> };
  return new Set(body.tools.filter((t) => t.backends.length > 0).map((t) => t.tool));
}

export async function readyz(p: SwitchboardProcess): Promise<Record<string, Record<string, unknown>>> {
  const res = await fetch(`${p.control}/readyz`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Record<string, Record<string, unknown>>;
}

/**
 * What a launcher does for each of its backends: a heartbeat every ttl/3, and after a failure a retry
 * soon (the real launcher backs off from 500 ms). Bounded: stops when told, never more than maxBeats.
 */
export class Heartbeats {
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  /** Heartbeats answered 200, and the others by status (0: no answer). */
  ok = 0;
  failed = new Map<number, number>();

  constructor(
    private readonly registry: () => SwitchboardProcess,
    private readonly ttl: number,
    private readonly maxBeats = 10_000,
  ) {}

  add(tool: string, port: number): void {
    this.loops.push(this.loop(tool, port));
  }

  private async loop(tool: string, port: number): Promise<void> {
    for (let i = 0; !this.stopped && i < this.maxBeats; i++) {
      let status = 0;
      try {
        const res = await heartbeat(this.registry(), tool, port, this.ttl);
        status = res.status;
        await res.arrayBuffer();
      } catch {
        status = 0;
      }
      if (status === 200) this.ok++;
      else this.failed.set(status, (this.failed.get(status) ?? 0) + 1);
      await sleep(status === 200 ? (this.ttl * 1000) / 3 : 300);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/**
 * Open file descriptors of a process (Linux /proc), how many of them are sockets, and, per named group of
 * ports, how many are TCP sockets with a peer on one of them (loopback: the port names the server). Pooled
 * connections to backends come and go with traffic, so a leak check counts them apart from the rest; all
 * from one reading of the descriptors.
 */
export function fds<K extends string>(pid: number, peers = {} as Record<K, number[]>): { total: number; sockets: number; to: Record<K, number> } {
  const dir = `/proc/${pid}/fd`;
  let total = 0;
  const inodes = new Set<string>();
  for (const fd of readdirSync(dir)) {
    total++;
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${dir}/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed while we looked */
    }
  }
  const groups = Object.entries(peers) as Array<[K, number[]]>;
  const to = Object.fromEntries(groups.map(([k]) => [k, 0])) as Record<K, number>;
  for (const table of groups.length > 0 ? ['tcp', 'tcp6'] : []) {
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9])) continue;
      const port = parseInt(cols[2].split(':')[1], 16);
      for (const [k, ports] of groups) if (ports.includes(port)) to[k]++;
    }
  }
  return { total, sockets: inodes.size, to };
}

export function alive(p: SwitchboardProcess): boolean {
  return p.proc.exitCode === null && p.proc.signalCode === null;
}
