import type { RouteTable, ToolCountsVisitor } from './route-table';
import { SHARDS } from './shards';
import { Slices } from './slices';

/** Backends of one source, by state: `live` routes; `held` is kept only by self-preservation (its lease lapsed). */
export interface BackendStates {
  live: number;
  held: number;
}

/** What the route-table gauges report about one snapshot. */
export interface TableStats {
  /** Tools with at least one live backend: held backends do not make a route. */
  routes: number;
  backends: { registered: BackendStates; discovered: BackendStates };
  assignments: number;
  /** Assignments of tools without a live backend (none, or only held ones). */
  assignmentsWithoutBackend: number;
  /** [tool, discovered backends] for the tools that have any, by tool name. */
  discoveredByTool: ReadonlyArray<readonly [string, number]>;
}

// A table is immutable, so its figures are computed once however often it is scraped; a scrape of a
// 100,000-backend table then costs one pass per new table, not one per scrape.
const cache = new WeakMap<RouteTable, TableStats>();
const computing = new WeakMap<RouteTable, Promise<TableStats>>();
/** Shards walked in one turn of the event loop by tableStatsInSlices: ~1/16 of the table. */
const SHARDS_PER_TURN = SHARDS / 16;

/**
 * A table's figures, with a turn of the event loop after every SHARDS_PER_TURN shards: under churn every
 * scrape finds a new table, and one pass over 100,000 tools in one go held a proxy's loop for 8-28 ms
 * (with the node flags of bin/switchboard.js, on a shared 2-core machine). Scrapes that ask while a pass
 * runs share it.
 */
export function tableStatsInSlices(table: RouteTable): Promise<TableStats> {
  const hit = cache.get(table);
  if (hit) return Promise.resolve(hit);
  let pending = computing.get(table);
  if (!pending) {
    pending = walkInSlices(table).finally(() => computing.delete(table));
    computing.set(table, pending);
  }
  return pending;
}

async function walkInSlices(table: RouteTable): Promise<TableStats> {
  const walk = new StatsWalk();
  const slices = new Slices(SHARDS_PER_TURN);
  for (let shard = 0; shard < SHARDS; shard++) {
    table.forEachToolCounts(walk.visit, shard, shard + 1);
    if (slices.count()) await slices.turn();
  }
  return walk.done(table);
}

/** The figures of a table, summed tool by tool. */
class StatsWalk {
  private readonly registered: BackendStates = { live: 0, held: 0 };
  private readonly discovered: BackendStates = { live: 0, held: 0 };
  private withoutBackend = 0;
  private readonly discoveredByTool: Array<[string, number]> = [];

  readonly visit: ToolCountsVisitor = (tool, r, d, assignments, held) => {
    if (r + d - held.registered - held.discovered === 0) this.withoutBackend += assignments;
    this.registered.live += r - held.registered;
    this.registered.held += held.registered;
    this.discovered.live += d - held.discovered;
    this.discovered.held += held.discovered;
    if (d > 0) this.discoveredByTool.push([tool, d]);
  };

  done(table: RouteTable): TableStats {
    this.discoveredByTool.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const stats: TableStats = {
      routes: table.routeCount,
      backends: { registered: this.registered, discovered: this.discovered },
      assignments: table.assignmentCount,
      assignmentsWithoutBackend: this.withoutBackend,
      discoveredByTool: this.discoveredByTool,
    };
    cache.set(table, stats);
    return stats;
  }
}
