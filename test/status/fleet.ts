import type { Registry } from '../../src/registry/registry';
import type { Store } from '../../src/registry/store';
import type { TableFeed } from '../../src/table/table-feed';
import type { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** How many tools of a seeded fleet are in each state besides live (the rest). */
export interface FleetShape {
  tools: number;
  discovered: number;
  held: number;
  notRunning: number;
}

export const toolName = (i: number): string => `tool-${String(i).padStart(5, '0')}`;

/** Runs `each` over 0..n-1, `width` at a time. */
async function inParallel(n: number, width: number, each: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await each(next++);
    }),
  );
}

/**
 * A fleet of `shape.tools` tools through the registry's own rules (heartbeats, port allocation) and the
 * store's own held mark: the first `discovered` tools are routed by discovery, the next `held` have their
 * backend held by self-preservation, the next `notRunning` have a port and no backend, the rest are live.
 * Backends point at ports outside the registry's range, so allocations never meet them, and nothing
 * listens there: run the registry with discovery off, or its reconciler drops the discovered ones. `skip`
 * leaves tools out (tests re-seed a fleet the store lost, but for those).
 */
export async function seedFleet(registry: Registry, store: Store, shape: FleetShape, skip: ReadonlySet<string> = new Set()): Promise<void> {
  const heldOnes: Array<{ tool: string; id: string; expiresAt: number; ttl: number }> = [];
  const firstNotRunning = shape.discovered + shape.held;
  await inParallel(shape.tools, 32, async (i) => {
    const tool = toolName(i);
    if (skip.has(tool)) return;
    if (i >= firstNotRunning && i < firstNotRunning + shape.notRunning) {
      await registry.allocatePort(tool, '127.0.0.1');
      return;
    }
    const url = `http://127.0.${Math.floor(i / 250) + 1}.${(i % 250) + 1}:40000`;
    const source = i < shape.discovered ? 'discovered' : 'registered';
    const b = await registry.heartbeat({ tool, id: 'b1', url, ttl: 3600, clientVersion: 'launcher/1.4.2', source });
    if (i >= shape.discovered && i < firstNotRunning) heldOnes.push({ tool, id: 'b1', expiresAt: b.expiresAt, ttl: b.ttl });
  });
  if (heldOnes.length) await store.markHeld(heldOnes);
}

/**
 * The store and its only registry restart together, empty, as a host restart without persistence does:
 * the registry has no copy to write back, so every tool the processes following the table knew is lost
 * until its heartbeat comes back. Answers the new registry process, started on the emptied store.
 */
export async function restartEmpty<T extends { stop(): Promise<void> }>(redis: RedisServer, registry: T, startRegistry: () => Promise<T>, follower: TableFeed): Promise<T> {
  await registry.stop();
  await redis.wipe();
  await redis.start();
  await waitFor('the loss seen by the follower', () => (follower.lostTools().length > 0 ? true : null), 30_000, 50);
  return startRegistry();
}
