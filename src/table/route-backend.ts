import { isRoutable, parseTarget, type BackendTarget } from './backend-target';
import type { Backend, BackendSource } from './records';

/** One backend of a tool's route, as the proxy forwards to it. */
export interface RouteBackend {
  readonly id: string;
  readonly url: string;
  readonly source: BackendSource;
  /**
   * Its lease lapsed and self-preservation keeps it (Backend.held): most likely dead. Not a live route;
   * tried after the live backends, and its refusal means the tool is not running rather than broken.
   */
  readonly held: boolean;
  /** Its sub-route (Backend.prefix, "/api"); null: the tool's other requests. */
  readonly prefix: string | null;
  readonly target: BackendTarget;
}

/**
 * A table's backend. Its target is parsed on the first request that goes to it, not when the table is
 * built: of 100,000 tools few get traffic, and a parsed target (an object, its hostname and host:port
 * strings) was ~110 of ~530 bytes a route (heap after a full reload of bench/proxy.ts's table). The URL
 * was checked when the backend was made, so the parse cannot fail. Immutable from outside; the private
 * cache is derived from `url` and never changes once set (private fields are not properties: freeze
 * leaves them).
 */
export class TableBackend implements RouteBackend {
  #target: BackendTarget | null = null;

  constructor(
    readonly id: string,
    readonly url: string,
    readonly source: BackendSource,
    readonly held: boolean,
    readonly prefix: string | null = null,
  ) {
    Object.freeze(this);
  }

  get target(): BackendTarget {
    return (this.#target ??= parseTarget(this.url)!);
  }
}

/**
 * A RouteBackend from a backend record, or null when its URL is not routable. Exported for code that
 * finds a backend outside the table (fallback discovery) and wants to hand it to the proxy.
 */
export function createRouteBackend(b: Pick<Backend, 'id' | 'url' | 'source' | 'held' | 'prefix'>): RouteBackend | null {
  if (!isRoutable(b.url)) return null;
  return new TableBackend(b.id, b.url, sourceLiteral(b.source), b.held === true, b.prefix ?? null);
}

/** The constant string rather than the copy each parsed record carries: one less string per backend. */
export function sourceLiteral(s: BackendSource): BackendSource {
  return s === 'registered' ? 'registered' : s === 'discovered' ? 'discovered' : s;
}
