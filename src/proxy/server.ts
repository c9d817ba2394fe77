import http from 'node:http';
import type net from 'node:net';
import { listen } from '../net/listen';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { ConnectGuard } from '../net/connect-guard';
import type { ListeningSockets } from '../net/listening-sockets';
import type { RouteSource } from '../table/route-table';
import { ProxyAccounting } from './accounting';
import { assignedElsewhere } from './assigned-elsewhere';
import { Attempts } from './attempts';
import { BackendSupply, type ProxyHooks } from './backend-supply';
import { Balancer } from './balancer';
import { ClientSlots } from './client-slots';
import { createForwarder, type EngineName } from './forwarder';
import { forwardPolicy } from './forward-policy';
import { ProxyHandler } from './handler';
import { PassiveHealth, type HealthOptions } from './health';
import { HoldQueues, type HoldOutcome, type TableEvents } from './hold';
import { applyHttpLimits, httpServerOptions } from './http-options';
import { drain, serve, type ExchangeListener, type Listener } from './listeners';
import { PlainPort, type PlainPortOptions } from './plain-port';
import { PolicyGate } from './policy-gate';
import { restorePrefix } from './strip-prefix';
import { LandingPage } from './landing-page';
import type { CertificateStore } from './tls/certificate-store';
import { createTlsServer, withHsts, type TlsServer } from './tls/tls-server';
import type { TrafficCounters } from './traffic-counters';

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
  /** Switchboard's own listening sockets, which the proxy never connects to (none: no such check). */
  self?: ListeningSockets;
  /** The certificates of the HTTPS listener (none: no HTTPS); the proxy closes the store when it closes. */
  certificates?: CertificateStore | null;
}

export interface ProxyServer {
  server: http.Server;
  /** The HTTPS listener (HTTP/1.1, and HTTP/2 unless proxy.tls.http2.enabled is off): null when no certificate is configured. */
  tls: TlsServer | null;
  certificates: CertificateStore | null;
  /** What forwards plain requests: undici, whatever config.proxy.engine names. */
  engine: EngineName;
  /** What the proxy learned about its backends from its own traffic. */
  health: PassiveHealth;
  /** The requests it answered, per tool (the status page's rates). */
  traffic: TrafficCounters;
  /** Open connections to backends, pooled and in use (leak checks, status). */
  upstreamSockets(): number;
  listen(port: number, host: string): Promise<number>;
  /** Starts the HTTPS listener (there must be one); answers its port. */
  listenTls(port: number, host: string): Promise<number>;
  /** Stops accepting, lets in-flight requests finish up to config.proxy.drainTimeoutMs, then cuts the rest. */
  close(): Promise<void>;
}

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
  let draining = false;
  const forwarder = createForwarder({
    connectTimeoutMs: pc.connectTimeoutMs,
    responseTimeoutMs: pc.responseTimeoutMs,
    bodyIdleTimeoutMs: pc.bodyIdleTimeoutMs,
    bodyTimedOut: () => accounting.countError('request_timeout'),
    bodyTooLarge: () => gate.countBodyTooLarge(),
    wsIdleTimeoutMs: opts.wsIdleTimeoutMs ?? 600_000,
    agent: pc.agent,
    relayBytesPerTurn: pc.relayBytesPerTurn,
    guard: new ConnectGuard(config.allowedNetworks, opts.lookup, opts.self ?? null, assignedElsewhere(routes)),
    responseHead: (req, headers) => {
      // The id the backend was sent (rewriteRequestHeaders): the one in the access log and error pages.
      headers['x-request-id'] = req.headers['x-request-id'];
      if (draining) headers.connection = 'close';
      restorePrefix(req, headers);
    },
  });
  const holds = holdQueues(pc, routes, metrics);
  const server = http.createServer(httpServerOptions(pc));
  applyHttpLimits(server, pc);
  const certificates = opts.certificates ?? null;
  const tlsServer = certificates ? createTlsServer(pc, certificates, logger, metrics) : null;
  const listeners: Listener[] = tlsServer ? [server, tlsServer] : [server];
  const policy = forwardPolicy(config);
  const gate = new PolicyGate({ routes, trusted: policy.trusted, requireUserAgent: pc.requireUserAgent, banReasonOnPage: pc.banReasonOnPage, metrics });
  const handler = new ProxyHandler({
    routes,
    domain: config.domain,
    policy,
    supply: new BackendSupply(opts.hooks, holds, logger, () => draining),
    balancer,
    attempts: new Attempts(forwarder, balancer, health, accounting, logger, Math.max(1, opts.maxAttempts ?? 3)),
    forwarder,
    health,
    accounting,
    logger,
    traceContext: pc.traceContext,
    bodies: pc,
    // A request past its client's share waits for a slot as long as it may wait for a backend connection.
    slots: new ClientSlots(pc.maxConnectionsPerClient, pc.connectTimeoutMs, policy.trusted),
    landing: pc.landingPage ? new LandingPage(routes) : null,
    gate,
    draining: () => draining,
    closedWhileDraining: () => setImmediate(() => listeners.forEach((l) => l.closeIdleConnections())),
  });

  let tlsPort = 0;
  const redirectPort = () => pc.tls.redirectPort || tlsPort;
  serve(server, plainPort(pc, handler, { accounting, trusted: policy.trusted, httpsPort: tlsServer && pc.tls.redirectHttp ? redirectPort : null }), accounting, logger);
  if (tlsServer) serve(tlsServer, pc.tls.hsts ? withHsts(handler, pc.tls.hstsMaxAgeSeconds) : handler, accounting, logger);

  let closing: Promise<void> | null = null;
  return {
    server,
    tls: tlsServer,
    certificates,
    engine: forwarder.engine,
    health,
    traffic: accounting.traffic,
    upstreamSockets: () => forwarder.socketCount(),
    listen: (port, host) => listen(server, port, host),
    async listenTls(port, host) {
      if (!tlsServer) throw new Error('no certificate is configured: the proxy has no TLS listener');
      return (tlsPort = await listen(tlsServer, port, host));
    },
    close(): Promise<void> {
      closing ??= (async () => {
        // From here every answer's head says `connection: close` (answer(), responseHead), so a client does
        // not send another request on a connection about to close.
        draining = true;
        certificates?.close();
        // Held requests get their answer now (the 503 page, `connection: close`) rather than at the cut.
        holds?.releaseAll();
        await drain(listeners, pc.drainTimeoutMs, () => {
          for (const s of handler.upgraded) s.destroy();
          forwarder.close();
        });
      })();
      return closing;
    },
  };
}

/** The plain port's listener: the handler itself, or a PlainPort before it when it redirects or serves ACME challenges. */
function plainPort(pc: Config['proxy'], handler: ProxyHandler, o: Pick<PlainPortOptions, 'accounting' | 'trusted' | 'httpsPort'>): ExchangeListener {
  if (o.httpsPort === null && pc.tls.acmeWebroot === null) return handler;
  return new PlainPort({ ...o, handler, traceContext: pc.traceContext, acmeWebroot: pc.tls.acmeWebroot });
}
