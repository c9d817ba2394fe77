import type http from 'node:http';
import type { Logger } from '../logger';
import type { Route } from '../table/route';
import type { RouteBackend } from '../table/route-backend';
import type { ProxyAccounting } from './accounting';
import { mayRetry, type Balancer } from './balancer';
import type { ProxyErrorCode } from './error-pages';
import type { Exchange } from './exchange';
import type { ForwardFailure, Forwarder, ForwardResult, RequestBody } from './forward-result';
import type { PassiveHealth } from './health';

/** The page of each kind of failure. */
const FAILURE_PAGE: Record<ForwardFailure['kind'], ProxyErrorCode> = {
  refused: 'bad_gateway',
  assigned_elsewhere: 'bad_gateway',
  reset: 'bad_gateway',
  bad_gateway: 'bad_gateway',
  timeout: 'gateway_timeout',
  bad_request: 'bad_request',
  client_gone: 'bad_gateway',
  client_timeout: 'request_timeout',
  body_too_large: 'body_too_large',
};

/**
 * A held backend (lease lapsed, kept by self-preservation) that refuses the connection is a tool that
 * stopped, not a broken one: it gets the page of a tool with no backend, not a 502.
 */
function heldRefusal(backend: RouteBackend, r: ForwardFailure): boolean {
  return backend.held && r.kind === 'refused';
}

/**
 * The page for a request whose last forward failed this way. A connection refused outright (nothing listens on
 * the port) is told apart from a backend that answered badly: it is the first thing an operator checks.
 */
export function lastFailurePage(r: ForwardFailure): ProxyErrorCode {
  return r.kind === 'refused' && r.code === 'ECONNREFUSED' ? 'backend_refused' : FAILURE_PAGE[r.kind];
}

/** The page for a failed forward to `backend`. */
export function failurePage(backend: RouteBackend, r: ForwardFailure): ProxyErrorCode {
  return heldRefusal(backend, r) ? 'not_running' : lastFailurePage(r);
}

/**
 * Forwards a request to a tool's backends: the balancer's pick (or the one backend given), again on another
 * where a retry is safe, up to maxAttempts. Every failure is counted, logged and told to passive health.
 */
export class Attempts {
  constructor(
    private readonly forwarder: Forwarder,
    private readonly balancer: Balancer,
    private readonly health: PassiveHealth,
    private readonly accounting: ProxyAccounting,
    private readonly logger: Logger,
    private readonly maxAttempts: number,
  ) {}

  /**
   * Answers undefined once the request is over (relayed, or the client left), else its last failure (null:
   * no backend to try); `ex.notRunning` then says whether every failure was a held backend refusing.
   */
  async forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ex: Exchange,
    route: Route,
    only: RouteBackend | null,
    body: RequestBody | null,
  ): Promise<ForwardFailure | null | undefined> {
    // A body read whole is sent again from memory: retried like a request without one.
    const streamed = body?.kind === 'stream';
    // Made on the first failure: most requests are answered by the first backend picked.
    let tried: Set<string> | undefined;
    let last: ForwardFailure | null = null;
    // A live backend's failure means a running tool that is broken, and keeps its own page.
    let heldRefusalsOnly = true;
    let again: RouteBackend | null = null;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const fresh = again !== null;
      const backend: RouteBackend | null = again ?? only ?? this.balancer.pick(route, tried);
      again = null;
      if (!backend) break;
      ex.attempts++;
      ex.backend = backend.id;
      const r: ForwardResult = await this.forwarder.web(req, res, backend, body, fresh, ex.responseTimeoutMs);
      if (r.kind === 'ok') {
        this.health.markSuccess(route.tool, backend);
        ex.outcome = 'ok';
        return undefined;
      }
      if (r.kind === 'client_gone') {
        ex.outcome = 'client_gone';
        return undefined;
      }
      last = r;
      (tried ??= new Set()).add(backend.id);
      if (r.staleConnection && !fresh && mayRetry(req.method, streamed, r)) {
        // The backend closed the pooled connection as we reused it: the same backend again, on a new one
        // (most tools have a single backend, and it is not at fault).
        again = backend;
        continue;
      }
      this.failed(route.tool, backend, r, ex);
      if (!heldRefusal(backend, r)) heldRefusalsOnly = false;
      if (only || !mayRetry(req.method, streamed, r)) break;
    }
    ex.notRunning = last !== null && heldRefusalsOnly && last.kind === 'refused';
    return last;
  }

  /** A forward to `backend` failed: counted, logged, and a backend that looks gone is cooled off. */
  failed(tool: string, backend: RouteBackend, r: ForwardFailure, ex: Exchange): void {
    // The client's doing: says nothing of the backend (a silent body is counted where its timer fires).
    if (r.kind === 'client_gone' || r.kind === 'bad_request' || r.kind === 'client_timeout' || r.kind === 'body_too_large') return;
    this.accounting.countError(heldRefusal(backend, r) ? 'not_running' : r.kind);
    // Refusals and resets say the backend is gone, and a name now pointing at another tool's port is no
    // backend of this tool: each is cooled off. A slow or garbled answer says nothing about the next, nor
    // does a pooled connection the backend had just closed.
    const down = r.kind === 'refused' || r.kind === 'assigned_elsewhere' || (r.kind === 'reset' && !r.staleConnection) || (r.kind === 'timeout' && r.phase === 'connect');
    const cooloffMs = down ? this.health.markFailure(tool, backend) : undefined;
    this.logger.warn(
      { event: 'proxy.backend_failed', requestId: ex.requestId, tool, backend: backend.id, held: backend.held, kind: r.kind, phase: r.phase, code: r.code, cooloffMs },
      'backend failed',
    );
  }
}
