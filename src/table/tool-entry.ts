import type { BackendSource, RouteAssignment } from './records';
import { freezeRoute, type Route } from './route';
import { TableBackend, sourceLiteral, type RouteBackend } from './route-backend';

/**
 * The table's entry for a tool with at most one backend and at most one assignment, which is nearly every
 * tool. It holds the record's fields and makes the Route (a backend, an assignment, two one-element
 * arrays and the route object: ~180 of ~410 bytes a route at 100,000 tools, bench/proxy.ts) on the
 * first lookup, and keeps it: of 100,000 tools few get traffic. Fewer objects also make a full reload
 * cheaper. Only the table's builder and its change application set the fields, before the table is
 * handed out; the kept route is derived from them and never changes once made.
 */
export class SingleBackendEntry {
  #route: Route | null = null;

  constructor(
    readonly tool: string,
    /** null: no backend (the tool holds a port and is not running). */
    public id: string | null,
    public url: string,
    public source: BackendSource,
    /** The backend's Backend.held mark. */
    public held: boolean,
    /** null: no assignment. */
    public host: string | null,
    public port: number,
  ) {}

  get backendCount(): number {
    return this.id === null ? 0 : 1;
  }

  get liveBackendCount(): number {
    return this.id === null || this.held ? 0 : 1;
  }

  get assignmentCount(): number {
    return this.host === null ? 0 : 1;
  }

  /** The route the proxy routes on: made once, then the same object for every request. */
  route(): Route {
    return (this.#route ??= this.view());
  }

  /** The route without keeping it: a walk over the whole table (metrics, status) must not grow it. */
  view(): Route {
    return (
      this.#route ??
      freezeRoute(
        this.tool,
        this.id === null ? [] : [new TableBackend(this.id, this.url, this.source, this.held)],
        this.host === null ? [] : [Object.freeze({ tool: this.tool, host: this.host, port: this.port })],
      )
    );
  }
}

/** What the table holds for a tool: the compact entry, or a Route with lists of any length. */
export type ToolEntry = SingleBackendEntry | Route;

/** The route a lookup answers: a compact entry's is made once and kept. */
export function routeOf(e: ToolEntry): Route {
  return e instanceof SingleBackendEntry ? e.route() : e;
}

/** The route for a walk over the table: a compact entry's is not kept. */
export function viewOf(e: ToolEntry): Route {
  return e instanceof SingleBackendEntry ? e.view() : e;
}

/** The entry for a tool's lists (handed over): compact when they allow it. */
export function entryOf(tool: string, backends: RouteBackend[], assignments: RouteAssignment[]): ToolEntry {
  // A sub-route's backend keeps its prefix on its route object: the compact entry holds none.
  if (backends.length > 1 || assignments.length > 1 || (backends.length === 1 && backends[0].prefix !== null)) return freezeRoute(tool, backends, assignments);
  const b = backends.length === 1 ? backends[0] : null;
  const a = assignments.length === 1 ? assignments[0] : null;
  return new SingleBackendEntry(tool, b ? b.id : null, b ? b.url : '', b ? sourceLiteral(b.source) : 'registered', b ? b.held : false, a ? a.host : null, a ? a.port : 0);
}

/** A table's totals, kept up to date entry by entry as it is built or changed. */
export interface EntryCounts {
  /** Tools with at least one backend that is not held. */
  routes: number;
  backends: number;
  assignments: number;
}

export function countInto(c: EntryCounts, e: ToolEntry | undefined, sign: 1 | -1): void {
  if (!e) return;
  const single = e instanceof SingleBackendEntry;
  const backends = single ? e.backendCount : e.backends.length;
  const live = single ? e.liveBackendCount > 0 : e.backends.some((b) => !b.held);
  if (live) c.routes += sign;
  c.backends += sign * backends;
  c.assignments += sign * (single ? e.assignmentCount : e.assignments.length);
}
