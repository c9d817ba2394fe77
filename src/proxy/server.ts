import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { listen } from '../net/listen';
import { answerClientError } from '../client-error';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { ConnectGuard } from '../net/connect-guard';
import { NetworkSet } from '../net/networks';
import type { RouteSource } from '../table/route-table';
import { ProxyAccounting } from './accounting';
import { Attempts } from './attempts';
import { BackendSupply, type ProxyHooks } from './backend-supply';
import { Balancer } from './balancer';
import { clientLimits } from './client-limits';
import { ClientSlots } from './client-slots';
import { createForwarder, type EngineName } from './forwarder';
import { ProxyHandler } from './handler';
import { PassiveHealth, type HealthOptions } from './health';
import { HoldQueues, type HoldOutcome, type TableEvents } from './hold';

export type { ProxyHooks } from './backend-supply';

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
  /** What forwards plain requests: undici, whatever config.proxy.engine names. */
  engine: EngineName;
  /** What the proxy learned about its backends from its own traffic. */
  health: PassiveHealth;
  /** Open connections to backends, pooled and in use (leak checks, status). */
  upstreamSockets(): number;
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets in-flight requests finish up to config.proxy.drainTimeoutMs, then cuts the rest. */
  close(): Promise<void>;
}

/** Request head limit; a bigger head is answered 431 (Node's default, set here so a flag cannot raise it). */
const MAX_HEADER_BYTES = 16 * 1024;

/** Whether the route source says when its table changes (a TableFeed does): holding needs that. */
function tableEvents(routes: RouteSource): TableEvents | null {
  const r = routes as Partial<TableEvents>;
  return typeof r.on === 'function' && typeof r.off === 'function' ? (r as TableEvents) : null;
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
  const { config, routes, logger, metrics } = opts;
  const pc = config.proxy;
  const accounting = new ProxyAccounting(metrics, logger, pc.accessLog);
  const health = new PassiveHealth(opts.health);
  const balancer = new Balancer(health);
  const limits = clientLimits(pc);
  const trusted = new NetworkSet(pc.trustedProxies);
  let draining = false;
  const forwarder = createForwarder({
    connectTimeoutMs: pc.connectTimeoutMs,
    responseTimeoutMs: pc.responseTimeoutMs,
    bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs,
    bodyTimedOut: () => accounting.countError('request_timeout'),
    wsIdleTimeoutMs: opts.wsIdleTimeoutMs ?? 600_000,
    agent: pc.agent,
    guard: new ConnectGuard(config.allowedNetworks, opts.lookup),
    responseHead: (req, headers) => {
      // The id the backend was sent (rewriteRequestHeaders): the one in the access log and error pages.
      headers['x-request-id'] = req.headers['x-request-id'];
      if (draining) headers.connection = 'close';
    },
  });
  const holds = holdQueues(pc, routes, metrics);
  const server = createHttpServer(pc);
  const handler = new ProxyHandler({
    routes,
    domain: config.domain,
    trusted,
    supply: new BackendSupply(opts.hooks, holds, logger, () => draining),
    balancer,
    attempts: new Attempts(forwarder, balancer, health, accounting, logger, Math.max(1, opts.maxAttempts ?? 3)),
    forwarder,
    health,
    accounting,
    logger,
    limits,
    // A request past its client's share waits for a slot as long as it may wait for a backend connection.
    slots: new ClientSlots(limits.maxConnectionsPerClient, pc.connectTimeoutMs, trusted),
    draining: () => draining,
    closedWhileDraining: () => setImmediate(() => server.closeIdleConnections()),
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => handler.onRequest(req, res));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => handler.onUpgrade(req, socket, head));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = answerClientError(err, socket);
    if (status !== null) accounting.countStatus(status);
  });
  server.on('error', (err: Error) => logger.error({ event: 'proxy.server_error', err: err.message }, 'proxy server error'));

  let closing: Promise<void> | null = null;
  return {
    server,
    engine: forwarder.engine,
    health,
    upstreamSockets: () => forwarder.socketCount(),
    listen: (port, host) => listen(server, port, host),
    close(): Promise<void> {
      closing ??= (async () => {
        // From here every answer's head says `connection: close` (answer(), responseHead), so a client does
        // not send another request on a connection about to close.
        draining = true;
        // Held requests get their answer now (the 503 page, `connection: close`) rather than at the cut.
        holds?.releaseAll();
        await drain(server, pc.drainTimeoutMs, () => {
          for (const s of handler.upgraded) s.destroy();
          forwarder.close();
        });
      })();
      return closing;
    },
  };
}

function createHttpServer(pc: Config['proxy']): http.Server {
  const headersTimeout = Math.min(pc.headersTimeoutMs, pc.requestTimeoutMs);
  const server = http.createServer({
    // Stated rather than inherited: a lenient parser or a NODE_OPTIONS flag would let ambiguous framing
    // (CL with TE, bare LF, obfuscated TE) through to backends that may read it differently.
    insecureHTTPParser: false,
    maxHeaderSize: MAX_HEADER_BYTES,
    // Node's own answer to a missing Host is an empty 400; the handler answers it like every other refusal.
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
  return server;
}

/**
 * Stops accepting, lets in-flight requests finish for up to `timeoutMs`, then cuts every connection left:
 * the server's own, and through `cut` the upgraded ones (which the server no longer tracks, though its
 * close waits for them) and the backend connections.
 */
async function drain(server: http.Server, timeoutMs: number, cut: () => void): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  server.closeAllConnections();
  cut();
  await closed;
}
