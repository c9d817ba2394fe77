import type { RouteTable } from './route-table';

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

export function tableStats(table: RouteTable): TableStats {
  const hit = cache.get(table);
  if (hit) return hit;
  const registered: BackendStates = { live: 0, held: 0 };
  const discovered: BackendStates = { live: 0, held: 0 };
  let withoutBackend = 0;
  const discoveredByTool: Array<[string, number]> = [];
  table.forEachToolCounts((tool, r, d, assignments, held) => {
    if (r + d - held.registered - held.discovered === 0) withoutBackend += assignments;
    registered.live += r - held.registered;
    registered.held += held.registered;
    discovered.live += d - held.discovered;
    discovered.held += held.discovered;
    if (d > 0) discoveredByTool.push([tool, d]);
  });
  discoveredByTool.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const stats: TableStats = {
    routes: table.routeCount,
    backends: { registered, discovered },
    assignments: table.assignmentCount,
    assignmentsWithoutBackend: withoutBackend,
    discoveredByTool,
  };
  cache.set(table, stats);
  return stats;
}
