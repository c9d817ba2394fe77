// The route table of bench/proxy.ts: many tools written through the store as the registry would write
// them, and the cost of a full reload of that table (store read and table build timed apart).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as LoggerModule from '../src/logger';
import type * as RouteTableModule from '../src/table/route-table';
import type * as TableFeedModule from '../src/table/table-feed';
import type * as RedisStoreModule from '../src/registry/redis-store';
import type { Store } from '../src/registry/store';
import { percentile, ROOT, SWITCHBOARD_NODE_FLAGS, switchboardEnv } from './lib';

/** The compiled module, as a proxy process runs it (tsx's transform is slower on this path). */
function compiled<T>(rel: string): T {
  return require(path.join(ROOT, 'dist', 'src', rel)) as T;
}

/** The tool every load request goes to; the others are there to make the table big. */
export const HIT_TOOL = 'tool-0';

/** Tool i of writeRoutes: its name, and the host:port and URL of its one backend (id "a"). */
export function routeOf(i: number, backendPort: number): { tool: string; host: string; port: number; url: string } {
  const host = i === 0 ? '127.0.0.1' : `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  const port = i === 0 ? backendPort : 20000 + (i % 10000);
  return { tool: `tool-${i}`, host, port, url: `http://${host}:${port}` };
}

/**
 * Tools tool-<from>..tool-<to - 1>, one backend each with its own host:port (the registry assigns each
 * host:port to one tool). Tool 0 is the real backend; the others are loopback addresses nobody connects to.
 */
export async function writeRoutes(store: Store, from: number, to: number, backendPort: number): Promise<void> {
  const now = Date.now();
  const one = async (i: number) => {
    const { tool, host, port, url } = routeOf(i, backendPort);
    const r = await store.upsertBackend({
      tool,
      id: 'a',
      url,
      host,
      port,
      // Long enough that no lease lapses during the run.
      ttl: 3600,
      source: 'registered',
      clientVersion: 'bench',
      now,
    });
    if (!r.ok) throw new Error(`${tool}: ${r.reason}`);
  };
  // Batches keep a few thousand commands in flight: pipelined, without queueing 100,000 promises at once.
  const BATCH = 2000;
  for (let start = from; start < to; start += BATCH) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(to, start + BATCH); i++) batch.push(one(i));
    await Promise.all(batch);
  }
}

export interface ReloadTiming {
  backends: number;
  /** store.snapshot(): the read from Redis and JSON parsing of every record. */
  snapshotMs: { p50: number; max: number };
  /** RouteTable.fromSnapshot: the immutable table built from it. */
  buildMs: { p50: number; max: number };
  /** TableFeed's full reload as a proxy runs it (read, build, swap). */
  reloadMs: { p50: number; max: number };
}

function stats(xs: number[]): { p50: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), max: s[s.length - 1] };
}

export async function timeReload(redisUrl: string, repeat: number): Promise<ReloadTiming> {
  const { silentLogger } = compiled<typeof LoggerModule>('logger.js');
  const { RouteTable } = compiled<typeof RouteTableModule>('table/route-table.js');
  const { TableFeed } = compiled<typeof TableFeedModule>('table/table-feed.js');
  const { RedisStore } = compiled<typeof RedisStoreModule>('registry/redis-store.js');
  const store = await RedisStore.connect({ url: redisUrl, keyPrefix: 'sb:', commandTimeoutMs: 10_000 });
  try {
    return await timeWith(store, repeat, RouteTable, TableFeed, silentLogger);
  } finally {
    await store.close();
  }
}

async function timeWith(
  store: Store,
  repeat: number,
  RouteTable: typeof RouteTableModule.RouteTable,
  TableFeed: typeof TableFeedModule.TableFeed,
  silentLogger: typeof LoggerModule.silentLogger,
): Promise<ReloadTiming> {
  const snapshotMs: number[] = [];
  const buildMs: number[] = [];
  const reloadMs: number[] = [];
  let backends = 0;
  for (let i = 0; i < repeat; i++) {
    let t = performance.now();
    const snap = await store.snapshot();
    snapshotMs.push(performance.now() - t);
    backends = snap.backends.length;
    t = performance.now();
    RouteTable.fromSnapshot(snap);
    buildMs.push(performance.now() - t);
  }
  const feed = new TableFeed(store, { pollMs: 3_600_000, carryOverMs: 30_000, logger: silentLogger() });
  await feed.start();
  try {
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      await feed.requestReload('bench');
      reloadMs.push(performance.now() - t);
    }
    if (feed.current()?.backendCount !== backends) throw new Error(`reload built ${feed.current()?.backendCount} backends, expected ${backends}`);
  } finally {
    await feed.stop();
  }
  return { backends, snapshotMs: stats(snapshotMs), buildMs: stats(buildMs), reloadMs: stats(reloadMs) };
}

/**
 * timeReload in a process of its own started with the node flags switchboard runs with (bin/switchboard.js):
 * those flags change when V8 collects garbage, which a reload of 100,000 routes makes a lot of.
 */
export function timeReloadAsSwitchboard(redisUrl: string, repeat: number): Promise<ReloadTiming> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...SWITCHBOARD_NODE_FLAGS, '--require', 'tsx/cjs', __filename, redisUrl, String(repeat)], {
      cwd: ROOT,
      env: switchboardEnv({ PATH: process.env.PATH ?? '' }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as ReloadTiming);
      else reject(new Error(`reload timing process exited ${code}`));
    });
  });
}

if (require.main === module) {
  const [redisUrl, repeat] = process.argv.slice(2);
  timeReload(redisUrl, Number(repeat)).then(
    (t) => process.stdout.write(JSON.stringify(t)),
    (err: Error) => {
      process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
