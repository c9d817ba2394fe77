import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import type { Config } from '../../config';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import { applyHttpLimits, httpServerOptions } from '../http-options';
import type { ExchangeListener } from '../listeners';
import type { Certificate } from './certificate';
import type { CertificateStore } from './certificate-store';
import { H2Request, H2Response } from './h2-exchange';
import { H2Sessions } from './h2-sessions';
import { readTicketKeys } from './ticket-keys';

/** The HTTPS listener, whichever protocols it speaks: what the proxy starts, drains and closes. */
export interface TlsServer extends tls.Server {
  closeIdleConnections(): void;
  closeAllConnections(): void;
  /** Reads proxy.tls.ticketKeyFile again (SIGHUP): a file that will not do is logged and the keys in use stay. */
  reloadTicketKeys(): void;
}

/**
 * The HTTPS listener: HTTP/1.1 over TLS with the plain port's parser and limits, and HTTP/2 beside it
 * (ALPN) unless proxy.tls.http2.enabled is off; its certificate chosen per connection by SNI from the
 * store. Built in this one function so that another kind of TLS server replaces nothing else.
 */
export function createTlsServer(pc: Config['proxy'], certificates: CertificateStore, logger: Logger, metrics?: Metrics): TlsServer {
  const options = httpServerOptions(pc);
  const first = certificates.defaultCertificate;
  const tlsOptions = {
    cert: first.pem.cert,
    key: first.pem.key,
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => cb(null, certificates.contextFor(servername)),
    // A client that connects and never completes its handshake is cut like one that never sends its head.
    handshakeTimeout: options.headersTimeout,
  };
  const server = (pc.tls.http2.enabled ? createH2Server(pc, tlsOptions, logger, metrics) : https.createServer({ ...options, ...tlsOptions })) as TlsServer;
  applyHttpLimits(server as unknown as http.Server, pc);
  const keyFile = pc.tls.ticketKeyFile;
  if (keyFile !== null) server.setTicketKeys(readTicketKeys(keyFile));
  server.reloadTicketKeys = () => {
    if (keyFile === null) return;
    try {
      server.setTicketKeys(readTicketKeys(keyFile));
      logger.info({ event: 'tls.ticket_keys_reloaded', file: keyFile }, 'TLS session-ticket keys read again');
    } catch (err) {
      logger.error({ event: 'tls.ticket_keys_refused', file: keyFile, err: (err as Error).message }, 'TLS session-ticket keys refused; the keys in use stay');
    }
  };
  // Connections already up keep the context they shook hands with: a reload drops none of them. The
  // session-ticket keys go over to the new context: without them it makes new ones, and every client's next
  // connection after a renewal would be a full handshake, the dearest thing a TLS connection costs here (the
  // workers of --workers, which resume each other's sessions, then no longer did).
  const swap = (c: Certificate) => server.setSecureContext({ cert: c.pem.cert, key: c.pem.key, ticketKeys: server.getTicketKeys() });
  certificates.on('default', swap);
  server.once('close', () => certificates.off('default', swap));
  return server;
}

/**
 * HTTP/2 and HTTP/1.1 on one port. The HTTP/1.1 connections get the plain port's parser, limits and
 * timeouts (Node reads them off the server); HTTP/2 sessions the bounds of proxy.tls.http2, which its
 * server-side DoS defences rest on: streams, header list and window per session, memory, invalid frames and
 * refused streams before the session is closed, pings and settings awaiting their answer; and those
 * H2Sessions adds (idle sessions, slow requests, resets and control frames per second).
 */
function createH2Server(pc: Config['proxy'], tlsOptions: tls.TlsOptions, logger: Logger, metrics: Metrics | undefined): TlsServer {
  const h = pc.tls.http2;
  const http1 = httpServerOptions(pc);
  const server = http2.createSecureServer({
    ...tlsOptions,
    allowHTTP1: true,
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
    settings: {
      maxConcurrentStreams: h.maxConcurrentStreams,
      maxHeaderListSize: h.maxHeaderListBytes,
      initialWindowSize: h.initialWindowBytes,
      // No RFC 8441 WebSockets: a client must not send CONNECT with :protocol (src/proxy/handler.ts refuses CONNECT).
      enableConnectProtocol: false,
    },
    // Headers are bounded by their size; the count only by what that size holds (each at least a few bytes).
    maxHeaderListPairs: Math.max(128, Math.floor(h.maxHeaderListBytes / 8)),
    maxSessionMemory: h.maxSessionMemoryMb,
    maxSessionInvalidFrames: h.maxInvalidFrames,
    maxSessionRejectedStreams: h.maxRejectedStreams,
    // The proxy sends no pings and one SETTINGS: anything more outstanding is a peer that does not answer.
    maxOutstandingPings: 10,
    maxOutstandingSettings: 10,
    unknownProtocolTimeout: http1.headersTimeout,
  } as http2.SecureServerOptions) as unknown as http2.Http2SecureServer & TlsServer;
  // What http.Server takes as options, Node's HTTP/1.1 code reads off this server.
  Object.assign(server, http1);
  // A failed handshake is no HTTP request: the default listener would answer it as one (clientError).
  server.removeAllListeners('tlsClientError');
  server.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => socket.destroy());
  const sessions = new H2Sessions(
    { idleMs: pc.keepAliveTimeoutMs, requestMs: pc.requestTimeoutMs, maxResetsPerSecond: h.maxResetsPerSecond, maxControlFramesPerSecond: h.maxControlFramesPerSecond },
    logger,
    metrics,
  );
  server.on('session', (session: http2.ServerHttp2Session) => sessions.add(session));
  server.on('sessionError', (err: Error, session: http2.ServerHttp2Session) => sessions.failed(err, session));
  const closeIdleHttp1 = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdleHttp1();
    sessions.closeGracefully();
  };
  server.closeAllConnections = () => {
    http.Server.prototype.closeAllConnections.call(server as unknown as http.Server);
    sessions.destroyAll();
  };
  return server;
}

/**
 * `target` with Strict-Transport-Security on every answer: set before the handler writes its head, so
 * error pages and redirects carry it too; a backend that sends its own keeps its own.
 */
export function withHsts(target: ExchangeListener, maxAgeSeconds: number): ExchangeListener {
  const value = `max-age=${maxAgeSeconds}`;
  return {
    onRequest(req, res) {
      res.setHeader('strict-transport-security', value);
      target.onRequest(req, res);
    },
    onUpgrade: (req, socket, head) => target.onUpgrade(req, socket, head),
    onConnect: target.onConnect && ((req, res) => {
      res.setHeader('strict-transport-security', value);
      target.onConnect?.(req, res);
    }),
  };
}
