import type { Logger } from '../logger';
import type { Route } from '../table/route';
import { isSubRoute } from '../table/sub-routes';
import type { RouteBackend } from '../table/route-backend';
import type { Exchange } from './exchange';
import type { HoldQueues, Waiter } from './hold';

export interface ProxyHooks {
  /**
   * Called when a known tool has no backend in the table, before the proxy answers 503 (the place for
   * fallback port discovery). A backend it answers serves this request; null means "not running".
   */
  onNoLiveBackend?(tool: string, route: Route): Promise<RouteBackend | null>;
  /** A backend onNoLiveBackend answered refused or failed the request: what it remembers of it is stale. */
  onDiscoveredFailed?(tool: string, backend: RouteBackend): void;
}

/**
 * What a tool's request is forwarded to: its route (the balancer picks among the backends), or `only` the one
 * backend the discovery hook found; `none` when the tool is not running; `client_gone` when the client left
 * while the request was held.
 */
export type Supply = { kind: 'route'; route: Route; only: RouteBackend | null } | { kind: 'none' } | { kind: 'client_gone' };

const NONE: Supply = { kind: 'none' };
const CLIENT_GONE: Supply = { kind: 'client_gone' };

/**
 * Backends for a tool whose route has none live: first the discovery hook (a process listening on the tool's
 * assigned port), then a hold until one appears in the table (proxy.holdMs). Nothing of the request has been
 * read or forwarded while it waits, so a body is still whole for the backend that comes.
 */
export class BackendSupply {
  constructor(
    private readonly hooks: ProxyHooks | undefined,
    private readonly holds: HoldQueues | null,
    private readonly logger: Logger,
    private readonly draining: () => boolean,
  ) {}

  /**
   * The route's own backends when it has any, without a wait: nearly every request, answered without the
   * promise and turn of the microtask queue an async call costs. Null: ask backendsFor.
   */
  now(route: Route): Supply | null {
    return route.backends.length > 0 ? { kind: 'route', route, only: null } : null;
  }

  async backendsFor(route: Route, client: Waiter, ex: Exchange): Promise<Supply> {
    const now = this.now(route);
    if (now) return now;
    // A path none of the tool's sub-routes takes, while the tool runs: neither discovery nor a hold would
    // bring a backend for it (both would hand over the tool's other backends).
    if (isSubRoute(route)) return NONE;
    const only = await this.discovered(route, ex.requestId);
    if (only) return { kind: 'route', route, only };
    return this.held(route.tool, client, ex);
  }

  /** Waits for a backend of the tool to appear in the table: its new route, or why none came. */
  async held(tool: string, client: Waiter, ex: Exchange): Promise<Supply> {
    if (!this.holds || this.draining()) return NONE;
    const r = await this.holds.wait(tool, client);
    ex.held = Math.round(r.heldMs * 10) / 10;
    ex.hold = r.outcome;
    if (r.outcome === 'forwarded') return { kind: 'route', route: r.route, only: null };
    return r.outcome === 'client_gone' ? CLIENT_GONE : NONE;
  }

  /** The discovered backend failed this request: the hook forgets it. */
  failed(tool: string, backend: RouteBackend): void {
    this.hooks?.onDiscoveredFailed?.(tool, backend);
  }

  private async discovered(route: Route, requestId: string): Promise<RouteBackend | null> {
    if (!this.hooks?.onNoLiveBackend) return null;
    try {
      return await this.hooks.onNoLiveBackend(route.tool, route);
    } catch (err) {
      this.logger.warn({ event: 'proxy.hook_failed', tool: route.tool, requestId, err: (err as Error).message }, 'onNoLiveBackend failed');
      return null;
    }
  }
}
