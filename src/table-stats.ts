import type { RouteTable } from './proxy/route-table';

/** What the route-table gauges report about one snapshot. */
export interface TableStats {
  routes: number;
  backends: { registered: number; discovered: number };
  assignments: number;
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
  let registered = 0;
  let discovered = 0;
  let withoutBackend = 0;
  const discoveredByTool: Array<[string, number]> = [];
  table.tally((tool, r, d, assignments) => {
    if (r + d === 0) withoutBackend += assignments;
    registered += r;
    if (d > 0) discoveredByTool.push([tool, d]);
    discovered += d;
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
