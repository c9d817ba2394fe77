import type http from 'node:http';
import type { TLSSocket } from 'node:tls';

// Fields of the access-log line read from the request and its connection. Client-sent text is cut to a
// bound, and a referer loses what may carry a secret (credentials, query, fragment), as the path does.

const UA_MAX = 256;
const REFERER_MAX = 512;
const SNI_MAX = 253;

/** The protocol a request came in: `HTTP/1.1`, `HTTP/1.0`, `h2`. */
export function protoOf(req: http.IncomingMessage): string {
  const v = req.httpVersion;
  return v === '1.1' ? 'HTTP/1.1' : v === '2.0' ? 'h2' : `HTTP/${v}`;
}

export function userAgentOf(req: http.IncomingMessage): string | undefined {
  const ua = req.headers['user-agent'];
  return ua === undefined ? undefined : ua.slice(0, UA_MAX);
}

/** The Referer without userinfo, query string or fragment. */
export function refererOf(req: http.IncomingMessage): string | undefined {
  const ref = req.headers.referer;
  if (!ref) return undefined;
  let end = ref.length;
  for (const c of ['?', '#']) {
    const i = ref.indexOf(c);
    if (i >= 0 && i < end) end = i;
  }
  let out = ref.slice(0, end);
  const authority = out.indexOf('//') + 2;
  if (authority >= 2) {
    const at = out.indexOf('@', authority);
    const path = out.indexOf('/', authority);
    if (at >= 0 && (path < 0 || at < path)) out = out.slice(0, authority) + out.slice(at + 1);
  }
  return out.slice(0, REFERER_MAX);
}

/** The TLS version of the connection a request came on (`TLSv1.3`); none over plain TCP. */
export function tlsVersionOf(req: http.IncomingMessage): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  return socket.encrypted ? (socket.getProtocol?.() ?? undefined) : undefined;
}

/** The SNI name the client sent in its TLS handshake; none over plain TCP or without SNI. */
export function sniOf(req: http.IncomingMessage): string | undefined {
  const sni = (req.socket as Partial<TLSSocket>).servername;
  return typeof sni === 'string' && sni ? sni.slice(0, SNI_MAX) : undefined;
}
