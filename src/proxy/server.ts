import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { answerClientError } from '../client-error';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { NetworkSet } from '../net/networks';
import { Balancer, mayRetry } from './balancer';
import { rawErrorResponse, renderError, sendError, wantsJson, type ProxyErrorCode } from './error-pages';
import { requestIdOf, rewriteRequestHeaders } from './forward-headers';
import { ConnectGuard } from '../net/connect-guard';
import { createForwarder, type EngineName, type ForwardFailure, type ForwardResult } from './forwarder';
import { PassiveHealth, type HealthOptions } from './health';
import { HoldQueues, type HoldOutcome, type TableEvents, type Waiter } from './hold';
import { resolveTool } from './host';
import type { RouteBackend, RouteSource, ToolRoute } from '../table/route-table';

export interface ProxyHooks {
  /**
   * Called when a known tool has no backend in the table, before the proxy answers 503 (the place for
   * fallback port discovery). A backend it answers serves this request; null means "not running".
   */
  onNoLiveBackend?(tool: string, route: ToolRoute): Promise<RouteBackend | null>;
  /** A backend onNoLiveBackend answered refused or failed the request: what it remembers of it is stale. */
  onDiscoveredFailed?(tool: string, backend: RouteBackend): void;
}

export interface ProxyServerOptions {
  config: Config;
  routes: RouteSource;
  logger: Logger;
  metrics?: Metrics;
  hooks?: ProxyHooks;
  health?: Partial<HealthOptions>;
  /** Idle limit of an upgraded (WebSocket) connection. Default 10 minutes. */
  wsIdleTimeoutMs?: number;
  /** Backends tried for one request, at most. Default 3. */
  maxAttempts?: number;
  /** The resolver beneath the connect-time address check (tests inject one; default dns.lookup). */
  lookup?: net.LookupFunction;
}

export interface ProxyServer {
  server: http.Server;
  /** What forwards plain requests (config.proxy.engine). */
  engine: EngineName;
  /** What the proxy learned about its backends from its own traffic. */
  health: PassiveHealth;
  /** Open connections to backends, pooled and in use (leak checks, status). */
  upstreamSockets(): number;
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets in-flight requests finish up to config.proxy.drainTimeoutMs, then cuts the rest. */
  close(): Promise<void>;
}

/** The access-log record of one request, filled in as it is handled. */
interface Exchange {
  requestId: string;
  started: number;
  tool?: string;
  /** The tool as found in the table: the only tool name metrics may carry (a URL can name anything). */
  routeTool?: string;
  backend?: string;
  attempts: number;
  outcome: string;
  /** Ms the request waited for a backend of its tool (proxy.holdMs), and how that ended; absent: never held. */
  held?: number;
  hold?: HoldOutcome;
  /** Every backend tried was held by self-preservation and refused: the tool is not running (503, not 502). */
  notRunning?: boolean;
}

const FAILURE_PAGE: Record<ForwardFailure['kind'], ProxyErrorCode> = {
  refused: 'bad_gateway',
  reset: 'bad_gateway',
  bad_gateway: 'bad_gateway',
  timeout: 'gateway_timeout',
  bad_request: 'bad_request',
  client_gone: 'bad_gateway',
};

/**
 * A held backend (lease lapsed, kept by self-preservation) that refuses the connection is a tool that
 * stopped, not a broken one: it gets the page of a tool with no backend, not a 502.
 */
function heldRefusal(backend: RouteBackend, r: ForwardFailure): boolean {
  return backend.held && r.kind === 'refused';
}

function failurePage(backend: RouteBackend, r: ForwardFailure): ProxyErrorCode {
  return heldRefusal(backend, r) ? 'not_running' : FAILURE_PAGE[r.kind];
}

/** Request head limit; a bigger head is answered 431 (Node's default, set here so a flag cannot raise it). */
const MAX_HEADER_BYTES = 16 * 1024;

function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * RFC 9112 3.2: an HTTP/1.1 request without Host, and any request with more than one Host line, is refused
 * with 400. Node keeps the first of two Host lines; a server behind that kept the last would route the
 * request somewhere else than this proxy judged it.
 */
function badHost(req: http.IncomingMessage): boolean {
  if (req.headers.host === undefined) return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && name.toLowerCase() === 'host' && ++seen > 1) return true;
  }
  return false;
}

function isWebSocket(req: http.IncomingMessage): boolean {
  return req.method === 'GET' && typeof req.headers.upgrade === 'string' && req.headers.upgrade.toLowerCase() === 'websocket';
}

/** Whether the route source says when its table changes (a TableFeed does): holding needs that. */
function tableEvents(routes: RouteSource): TableEvents | null {
  const r = routes as Partial<TableEvents>;
  return typeof r.on === 'function' && typeof r.off === 'function' ? (r as TableEvents) : null;
}

function pathOf(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  // The query is left out of the log: it is where tokens end up.
  return (q < 0 ? url : url.slice(0, q)).slice(0, 512);
}

/** The proxy's hold queues; null when holding is off (proxy.holdMs 0) or the route source cannot say when its table changes. */
function holdQueues(pc: Config['proxy'], routes: RouteSource, metrics: Metrics | undefined): HoldQueues | null {
  const tables = tableEvents(routes);
  if (pc.holdMs === 0 || !tables) return null;
  const outcomes = new Map<HoldOutcome, { inc(): void }>();
  return new HoldQueues({
    holdMs: pc.holdMs,
    maxPerTool: pc.holdMaxPerTool,
    tables,
    onCount: (n) => metrics?.proxyHeldRequests.set(n),
    onEnd: (r) => {
      if (!metrics) return;
      let c = outcomes.get(r.outcome);
      if (!c) outcomes.set(r.outcome, (c = metrics.proxyHolds.labels(r.outcome)));
      c.inc();
      if (r.outcome === 'forwarded') metrics.proxyHoldSeconds.observe(r.heldMs / 1000);
    },
  });
}

export function createProxyServer(opts: ProxyServerOptions): ProxyServer {
  const { config, routes, logger, metrics, hooks } = opts;
  // The access-log record has fixed fields, none of them a secret, and the logger's redaction walk costs
  // most of a line (~4 of ~5 us per request, bench/proxy.ts): access lines skip it.
  const accessLog = logger.child({}, { redact: [] });
  const pc = config.proxy;
  const trusted = new NetworkSet(pc.trustedProxies);
  const health = new PassiveHealth(opts.health);
  const balancer = new Balancer(health);
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
  const forwarder = createForwarder({
    engine: pc.engine,
    connectTimeoutMs: pc.connectTimeoutMs,
    responseTimeoutMs: pc.responseTimeoutMs,
    wsIdleTimeoutMs: opts.wsIdleTimeoutMs ?? 600_000,
    agent: pc.agent,
    guard: new ConnectGuard(config.allowedNetworks, opts.lookup),
    responseHead: (req, headers) => {
      // The id the backend was sent (rewriteRequestHeaders): the one in the access log and error pages.
      headers['x-request-id'] = req.headers['x-request-id'];
      if (draining) headers.connection = 'close';
    },
  });

  // prom-client hashes label values on every call; the children are looked up once per code and kind.
  const codeCounters = new Map<string, { inc(): void }>();
  const errorCounters = new Map<string, { inc(): void }>();
  const countRequest = (code: number, tool = '') => {
    if (!metrics) return;
    const key = metrics.perToolLabels ? `${code} ${tool}` : String(code);
    let c = codeCounters.get(key);
    if (!c) codeCounters.set(key, (c = metrics.perToolLabels ? metrics.proxyRequests.labels(String(code), tool) : metrics.proxyRequests.labels(String(code))));
    c.inc();
  };
  const durations = new Map<string, { observe(seconds: number): void }>();
  const observeDuration = (seconds: number, tool = '') => {
    if (!metrics) return;
    if (!metrics.perToolLabels) return metrics.proxyRequestDuration.observe(seconds);
    let h = durations.get(tool);
    if (!h) durations.set(tool, (h = metrics.proxyRequestDuration.labels(tool)));
    h.observe(seconds);
  };
  const countError = (kind: string) => {
    if (!metrics) return;
    let c = errorCounters.get(kind);
    if (!c) errorCounters.set(kind, (c = metrics.proxyErrors.labels(kind)));
    c.inc();
  };

  let draining = false;
  const upgraded = new Set<Duplex>();
  const holds = holdQueues(pc, routes, metrics);

  const headersTimeout = Math.min(pc.headersTimeoutMs, pc.requestTimeoutMs);
  const server = http.createServer({
    // Stated rather than inherited: a lenient parser or a NODE_OPTIONS flag would let ambiguous framing
    // (CL with TE, bare LF, obfuscated TE) through to backends that may read it differently.
    insecureHTTPParser: false,
    maxHeaderSize: MAX_HEADER_BYTES,
    // Node's own answer to a missing Host is an empty 400; handle() answers it like every other refusal.
    requireHostHeader: false,
    headersTimeout,
    requestTimeout: pc.requestTimeoutMs,
    keepAliveTimeout: pc.keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (30 s by default): a slowloris client would get
    // that much longer than headersTimeout.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(headersTimeout / 4))),
  });
  server.keepAliveTimeout = pc.keepAliveTimeoutMs;
  // Node drops headers past maxHeadersCount (2000) from req.headers after its parser framed the body by
  // them: a Transfer-Encoding at position 2001 would frame the body here but vanish from the forwarded
  // request, whose body would then reach the backend unframed, as the next request. Keep every header; the
  // head stays bounded by maxHeaderSize.
  server.maxHeadersCount = 0;

  function record(req: http.IncomingMessage, ex: Exchange, code: number): void {
    const seconds = (performance.now() - ex.started) / 1000;
    countRequest(code, ex.routeTool);
    observeDuration(seconds, ex.routeTool);
    if (pc.accessLog) {
      accessLog.info(
        {
          event: 'access',
          requestId: ex.requestId,
          method: req.method,
          path: pathOf(req.url),
          status: code,
          ms: Math.round(seconds * 1e4) / 10,
          tool: ex.tool,
          backend: ex.backend,
          attempts: ex.attempts,
          outcome: ex.outcome,
          held: ex.held,
          hold: ex.hold,
          remote: req.socket.remoteAddress,
        },
        'request',
      );
    }
  }

  function answer(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, code: ProxyErrorCode): void {
    ex.outcome = code;
    if (draining && !res.headersSent) res.setHeader('connection', 'close');
    sendError(res, renderError(code, { tool: ex.tool, requestId: ex.requestId, json: wantsJson(req.headers.accept) }));
  }

  /** The backend for a tool without one in the table, from the hook; null when it has none. */
  async function fallbackBackend(tool: string, route: ToolRoute, requestId: string): Promise<RouteBackend | null> {
    if (!hooks?.onNoLiveBackend) return null;
    try {
      return await hooks.onNoLiveBackend(tool, route);
    } catch (err) {
      logger.warn({ event: 'proxy.hook_failed', tool, requestId, err: (err as Error).message }, 'onNoLiveBackend failed');
      return null;
    }
  }

  /**
   * Waits for a backend of a tool that has an assignment and none live (proxy.holdMs): its route once one
   * is in the table, null when the hold ended without one. Nothing of the request was read or forwarded yet,
   * so a body is still whole for the backend that comes.
   */
  async function holdFor(tool: string, client: Waiter, ex: Exchange): Promise<ToolRoute | null> {
    if (!holds || draining) return null;
    const r = await holds.wait(tool, client);
    ex.held = Math.round(r.heldMs * 10) / 10;
    ex.hold = r.outcome;
    return r.outcome === 'forwarded' ? r.route : null;
  }

  function noteFailure(tool: string, backend: RouteBackend, r: ForwardFailure, ex: Exchange): void {
    if (r.kind === 'client_gone' || r.kind === 'bad_request') return;
    countError(heldRefusal(backend, r) ? 'not_running' : r.kind);
    // Refusals and resets say the backend is gone; a slow or garbled answer says nothing about the next.
    // A pooled connection the backend had just closed says nothing about it either.
    const down = r.kind === 'refused' || (r.kind === 'reset' && !r.staleConnection) || (r.kind === 'timeout' && r.phase === 'connect');
    const cooloffMs = down ? health.markFailure(tool, backend) : undefined;
    logger.warn(
      { event: 'proxy.backend_failed', requestId: ex.requestId, tool, backend: backend.id, held: backend.held, kind: r.kind, phase: r.phase, code: r.code, cooloffMs },
      'backend failed',
    );
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, ex: Exchange): Promise<void> {
    if (badHost(req)) {
      res.setHeader('connection', 'close');
      return answer(res, req, ex, 'bad_request');
    }
    const table = routes.current();
    if (!table) {
      countError('no_route');
      return answer(res, req, ex, 'no_routes');
    }
    const target = resolveTool(req.url ?? '/', req.headers.host, config.domain);
    ex.tool = target.tool;
    let route = target.kind === 'none' ? undefined : table.lookup(target.tool);
    if (!route || (route.backends.length === 0 && route.assignments.length === 0)) {
      countError('no_route');
      return answer(res, req, ex, 'no_such_tool');
    }
    ex.routeTool = route.tool;
    if (target.kind === 'redirect') {
      ex.outcome = 'redirect';
      res.writeHead(301, { location: target.location, 'content-length': '0', 'x-request-id': ex.requestId });
      res.end();
      return;
    }
    const tool = route.tool;
    let only: RouteBackend | null = null;
    if (route.backends.length === 0) {
      only = await fallbackBackend(tool, route, ex.requestId);
      if (!only) {
        const came = await holdFor(tool, res, ex);
        if (ex.hold === 'client_gone') return void (ex.outcome = 'client_gone');
        if (!came) {
          countError('not_running');
          return answer(res, req, ex, 'not_running');
        }
        route = came;
      }
    }
    rewriteRequestHeaders(req, { requestId: ex.requestId, trusted });
    const body = hasBody(req);
    let last = await forward(req, res, ex, route, only, body);
    if (last && ex.hold === undefined && mayRetry(req.method, body, last) && (only || !hasLiveBackend(tool))) {
      // The backend tried is gone and the tool has none in the table now (its launcher deregistered it while
      // this request was on its way; or discovery found a process on its way out): nothing of the request
      // was used up, so it is held like any request for a tool without a live backend.
      if (only) hooks?.onDiscoveredFailed?.(tool, only);
      const came = await holdFor(tool, res, ex);
      if (ex.hold === 'client_gone') return void (ex.outcome = 'client_gone');
      if (came) last = await forward(req, res, ex, came, null, body);
    }
    if (last === undefined) return;
    if (!last) {
      countError('not_running');
      return answer(res, req, ex, 'not_running');
    }
    answer(res, req, ex, ex.notRunning ? 'not_running' : FAILURE_PAGE[last.kind]);
  }

  /**
   * Whether the current table has a live backend for the tool: one deregistered meanwhile does not count,
   * nor one held by self-preservation (its heartbeats stopped: a restart may be under way, as for a tool
   * without a backend).
   */
  function hasLiveBackend(tool: string): boolean {
    const now = routes.current()?.lookup(tool);
    return now === undefined || now.backends.some((b) => !b.held) || now.assignments.length === 0;
  }

  /**
   * Tries the route's backends (or `only`), with retries where they are safe. Answers undefined once the
   * request is over (relayed, or the client left), else the last failure (null: no backend to try).
   */
  async function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ex: Exchange,
    route: ToolRoute,
    only: RouteBackend | null,
    body: boolean,
  ): Promise<ForwardFailure | null | undefined> {
    const tool = route.tool;
    // Made on the first failure: most requests are answered by the first backend picked.
    let tried: Set<string> | undefined;
    let last: ForwardFailure | null = null;
    // Every failure so far was a held backend refusing: the tool is not running (a live backend's failure
    // means a running tool that is broken, and keeps its own page).
    let heldRefusalsOnly = true;
    let again: RouteBackend | null = null;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const fresh = again !== null;
      const backend: RouteBackend | null = again ?? only ?? balancer.pick(route, tried);
      again = null;
      if (!backend) break;
      ex.attempts++;
      ex.backend = backend.id;
      const r: ForwardResult = await forwarder.web(req, res, backend, body, fresh);
      if (r.kind === 'ok') {
        health.markSuccess(tool, backend);
        ex.outcome = 'ok';
        return undefined;
      }
      if (r.kind === 'client_gone') {
        ex.outcome = 'client_gone';
        return undefined;
      }
      last = r;
      (tried ??= new Set()).add(backend.id);
      if (r.staleConnection && !fresh && mayRetry(req.method, body, r)) {
        // The backend closed the pooled connection as we reused it: the same backend again, on a new one
        // (most tools have a single backend, and it is not at fault).
        again = backend;
        continue;
      }
      noteFailure(tool, backend, r, ex);
      if (!heldRefusal(backend, r)) heldRefusalsOnly = false;
      if (only || !mayRetry(req.method, body, r)) break;
    }
    ex.notRunning = last !== null && heldRefusalsOnly && last.kind === 'refused';
    return last;
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ex: Exchange = { requestId: requestIdOf(req), started: performance.now(), attempts: 0, outcome: '' };
    // Every answer sets its own headers when it writes its head (no setHeader before: writeHead with a
    // head object alone skips a second copy and validation of every header). No set of the responses in
    // flight either, for the drain: a long-lived Set holding each response made V8 promote ~1.5 KiB per
    // request to the old generation (node --trace-gc-nvp under wrk: scavenge pauses 5-7 ms instead of
    // ~1 ms, a major GC every ~0.5 s, ~30% fewer requests/s). Answers started during a drain check
    // `draining` when they write their head instead.
    if (draining) res.setHeader('connection', 'close');
    // The line is written once the response has closed AND handle() is over, whichever comes last. The
    // response of a relayed answer closes first: Node emits 'close' from a nextTick, before the promise
    // continuation in handle() that records the outcome ran (the lines said "outcome":"" for every answer
    // relayed). A client gone mid-request is the same: its 'close' comes before the forwarder's answer.
    let ends = 2;
    const ended = () => {
      if (--ends === 0) record(req, ex, res.headersSent ? res.statusCode : 499);
    };
    // 'close' alone: Node emits it after 'finish' too, so one listener sees every end (a second on
    // 'finish' cost its wrapper and removal on every request).
    res.once('close', () => {
      ended();
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res, ex).then(ended, (err: Error) => {
      try {
        logger.error({ event: 'proxy.internal_error', requestId: ex.requestId, err: err.message, stack: err.stack }, 'proxy internal error');
        if (!res.headersSent) answer(res, req, ex, 'bad_gateway');
        else res.destroy();
      } finally {
        ended();
      }
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const ex: Exchange = { requestId: requestIdOf(req), started: performance.now(), attempts: 0, outcome: '' };
    socket.on('error', () => socket.destroy());
    upgraded.add(socket);
    let status = 0;
    // As for requests: the line once the socket has closed and the handling is over, whichever is last.
    let ends = 2;
    const ended = () => {
      if (--ends === 0) record(req, ex, status || 499);
    };
    socket.once('close', () => {
      upgraded.delete(socket);
      ended();
    });
    const refuse = (code: ProxyErrorCode) => {
      ex.outcome = code;
      const page = renderError(code, { tool: ex.tool, requestId: ex.requestId, json: wantsJson(req.headers.accept) });
      status = page.status;
      if (socket.destroyed) return;
      socket.end(rawErrorResponse(page), () => socket.destroy());
      // A client that never reads its answer must not hold the socket.
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    void (async () => {
      if (!isWebSocket(req) || badHost(req) || draining) return refuse(draining ? 'no_routes' : 'bad_request');
      const table = routes.current();
      if (!table) {
        countError('no_route');
        return refuse('no_routes');
      }
      const target = resolveTool(req.url ?? '/', req.headers.host, config.domain);
      ex.tool = target.tool;
      const route = target.kind === 'none' ? undefined : table.lookup(target.tool);
      if (!route || (route.backends.length === 0 && route.assignments.length === 0)) {
        countError('no_route');
        return refuse('no_such_tool');
      }
      ex.routeTool = route.tool;
      let backend = route.backends.length > 0 ? balancer.pick(route) : await fallbackBackend(route.tool, route, ex.requestId);
      if (!backend && route.backends.length === 0) {
        // Held like a plain request: nothing but the request head has been read from the socket.
        const came = await holdFor(route.tool, socket, ex);
        if (ex.hold === 'client_gone') {
          ex.outcome = 'client_gone';
          return;
        }
        if (came) backend = balancer.pick(came);
      }
      if (!backend) {
        countError('not_running');
        return refuse('not_running');
      }
      if (socket.destroyed) return;
      rewriteRequestHeaders(req, { requestId: ex.requestId, trusted, upgrade: true });
      ex.attempts = 1;
      ex.backend = backend.id;
      // No retry: on a failure http-proxy ends the client socket itself.
      const r = await forwarder.upgrade(req, socket, head, backend, (f) => refuse(failurePage(backend, f)));
      if (r.kind === 'ok') {
        status = 101;
        ex.outcome = 'ok';
        health.markSuccess(route.tool, backend);
      } else {
        if (r.kind === 'client_gone') ex.outcome = 'client_gone';
        noteFailure(route.tool, backend, r, ex);
      }
    })().then(ended, (err: Error) => {
      try {
        logger.error({ event: 'proxy.internal_error', requestId: ex.requestId, err: err.message, stack: err.stack }, 'proxy internal error');
        socket.destroy();
      } finally {
        ended();
      }
    });
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = answerClientError(err, socket);
    if (status !== null) countRequest(status);
  });

  server.on('error', (err: Error) => logger.error({ event: 'proxy.server_error', err: err.message }, 'proxy server error'));

  let closing: Promise<void> | null = null;

  return {
    server,
    engine: forwarder.engine,
    health,
    upstreamSockets: () => forwarder.socketCount(),
    listen(port: number, host: string): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close(): Promise<void> {
      closing ??= (async () => {
        // From here every answer's head says `connection: close` (answer(), responseHead), so a client does
        // not send another request on a connection about to close.
        draining = true;
        // Held requests get their answer now (the 503 page, `connection: close`) rather than at the cut.
        holds?.releaseAll();
        const closed = new Promise<void>((resolve) => {
          if (!server.listening) return resolve();
          server.close(() => resolve());
        });
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, pc.drainTimeoutMs);
        });
        await Promise.race([closed, timedOut]);
        clearTimeout(timer);
        server.closeAllConnections();
        for (const s of upgraded) s.destroy();
        forwarder.close();
        await closed;
      })();
      return closing;
    },
  };
}
