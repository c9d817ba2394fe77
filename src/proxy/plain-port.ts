import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { unmapIPv4, type NetworkSet } from '../net/networks';
import type { ProxyAccounting } from './accounting';
import { isAcmeChallenge, serveChallenge } from './acme-webroot';
import { renderError, sendError, wantsJson } from './error-pages';
import { startExchange, type Exchange } from './exchange';
import { refuseUpgrade } from './handler';
import { normaliseHost } from './host';
import type { ExchangeListener } from './listeners';

export interface PlainPortOptions {
  /** Where everything the plain port does not answer itself goes: the proxy's handler. */
  handler: ExchangeListener;
  accounting: ProxyAccounting;
  trusted: NetworkSet;
  traceContext: boolean;
  /** The https port redirects name (known once the TLS listener is up); null: no redirects. */
  httpsPort: (() => number) | null;
  /** Where ACME http-01 challenges are served from (proxy.tls.acmeWebroot); null: they go to the handler. */
  acmeWebroot: string | null;
}

/** `https://<host>[:port]<path>` for a request, or null when its Host or target cannot name one. */
export function httpsLocation(req: http.IncomingMessage, port: number): string | null {
  const host = normaliseHost(req.headers.host);
  const url = req.url;
  if (host === null || !url || url.charCodeAt(0) !== 47 /* / */) return null;
  return `https://${net.isIPv6(host) ? `[${host}]` : host}${port === 443 ? '' : `:${port}`}${url}`;
}

/**
 * The plain port in front of the proxy's handler, when HTTPS is on or ACME challenges are served: ACME
 * http-01 challenges from the webroot, never redirected; GET and HEAD answered 301 to the same URL on
 * https, other methods 403 `https_required`, WebSocket handshakes too. A trusted proxy that says its
 * client came over https (`X-Forwarded-Proto: https`) is served as before: it terminated TLS itself.
 */
export class PlainPort implements ExchangeListener {
  constructor(private readonly o: PlainPortOptions) {}

  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const webroot = this.o.acmeWebroot;
    if (webroot !== null && isAcmeChallenge(req.url)) {
      const ex = this.begin(req, res, 'acme_challenge');
      serveChallenge(webroot, req, res, ex.requestId).catch(() => res.destroy());
      return;
    }
    const port = this.redirectPort(req);
    if (port === null) return this.o.handler.onRequest(req, res);
    const ex = this.begin(req, res, 'https_redirect');
    const location = httpsLocation(req, port);
    if (location === null || (req.method !== 'GET' && req.method !== 'HEAD')) {
      const code = location === null ? 'bad_request' : 'https_required';
      ex.outcome = code;
      // As in the handler: a request whose Host cannot be trusted leaves nothing on its connection worth keeping.
      if (location === null) res.setHeader('connection', 'close');
      sendError(res, renderError(code, { requestId: ex.requestId, json: wantsJson(req.headers.accept) }));
      return;
    }
    res.writeHead(301, { location, 'content-length': '0', 'cache-control': 'no-store', 'x-request-id': ex.requestId });
    res.end();
  }

  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.redirectPort(req) === null) return this.o.handler.onUpgrade(req, socket, head);
    // A WebSocket client does not follow a 301: the page says to use wss:// instead.
    const ex = startExchange(req, this.o.traceContext);
    socket.on('error', () => socket.destroy());
    const status = refuseUpgrade(req, socket, ex, 'https_required');
    socket.once('close', () => this.o.accounting.ended(req, ex, status));
  }

  /** The port to redirect this request to, or null when it is served here as it is. */
  private redirectPort(req: http.IncomingMessage): number | null {
    const port = this.o.httpsPort;
    if (port === null || isAcmeChallenge(req.url)) return null;
    return this.cameOverHttps(req) ? null : port();
  }

  private cameOverHttps(req: http.IncomingMessage): boolean {
    const xfp = req.headers['x-forwarded-proto'];
    if (typeof xfp !== 'string' || xfp.toLowerCase() !== 'https' || this.o.trusted.ranges.length === 0) return false;
    const peer = unmapIPv4(req.socket.remoteAddress ?? '');
    return peer !== '' && this.o.trusted.has(peer);
  }

  /** An exchange answered here: its access-log line once the response has closed. */
  private begin(req: http.IncomingMessage, res: http.ServerResponse, outcome: string): Exchange {
    const ex = startExchange(req, this.o.traceContext);
    ex.outcome = outcome;
    res.once('close', () => this.o.accounting.ended(req, ex, res.headersSent ? res.statusCode : 499));
    return ex;
  }
}
