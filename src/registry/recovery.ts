import type { Store } from './store';
import type { AllocateOptions, RouteAssignment, TableVersion } from './types';

/**
 * What the registry remembers of the table before the store lost its state: its own TableFeed, which
 * carries the old table's assignments for a while after a new epoch (or a version that went back).
 */
export interface PreviousTable {
  /** The table the feed serves now (its epoch and version); null before its first snapshot. */
  current(): TableVersion | null;
  /** Reload from the store now; resolves once the reload (and any carry-over it starts) is done. */
  requestReload(reason: string): Promise<void>;
  /** The previous table's assignments while the carry-over lasts; empty otherwise. */
  carriedAssignments(): readonly RouteAssignment[];
}

/**
 * Keeps POST /v1/ports from handing a running tool's port to another tool after Redis restarted empty.
 * Until each launcher's next heartbeat re-creates its assignment, the store knows nothing of the ports in
 * use, and the lowest free port is very likely one a tool is listening on: the newcomer could not bind
 * it, the old tool's heartbeats would then fail with port_conflict, and the reconciler would even heal
 * the old tool's server as the newcomer. So, for the carry-over window (one TTL: every launcher has
 * heartbeated by then), ports of the previous table are reserved for their old tool, and that tool asking
 * again gets its old port back.
 */
export class EpochRecovery {
  constructor(
    private readonly store: Store,
    private readonly previous: PreviousTable,
  ) {}

  /** The allocation constraints for `tool` on `host` right now (none outside a recovery window). */
  async allocateOptions(tool: string, host: string): Promise<AllocateOptions> {
    // The feed notices a lost state only on its next poll; an allocation can come first. One cheap read
    // tells whether the store lost what the feed holds (a new epoch, or a version that went back), and a
    // reload then sets up the carry-over.
    const store = await this.store.version();
    const held = this.previous.current();
    if (!held || held.epoch !== store.epoch || store.version < held.version) {
      await this.previous.requestReload('allocation found the store behind the table');
    }
    const exclude: number[] = [];
    let prefer: number | undefined;
    for (const a of this.previous.carriedAssignments()) {
      if (a.host !== host) continue;
      if (a.tool !== tool) exclude.push(a.port);
      else if (prefer === undefined || a.port < prefer) prefer = a.port;
    }
    const opts: AllocateOptions = {};
    if (exclude.length > 0) opts.exclude = exclude;
    if (prefer !== undefined) opts.prefer = prefer;
    return opts;
  }
}
