import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { NetworkSet, unmapIPv4 } from '../net/networks';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Set on every request the proxy forwards, replacing whatever the client sent. A control port refuses any
 * request that carries it (src/control/admission.ts): a backend URL may name a control port (a registry
 * does not know the ports of other processes), and the public port must not become a way into the
 * operator port. A client cannot remove it; sending it itself only gets its own request refused.
 */
export const FORWARDED_MARK = 'x-switchboard-forwarded';

// Generated ids are UUIDv8 (RFC 9562's custom layout): 74 random bits drawn once per process, then a
// 48-bit counter. Unique across processes and restarts like a random UUID, at a fraction of
// randomUUID's cost per request (~0.1 of ~0.8 us in CPU profiles under load); a request id is a correlation key,
// not a secret.
const ID_PREFIX = ((): string => {
  const h = randomBytes(10).toString('hex');
  const variant = ((parseInt(h[12], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(16, 19)}-`;
})();
let idCounter = 0;

/** A new request id (UUIDv8 layout, see ID_PREFIX). */
export function newRequestId(): string {
  idCounter = (idCounter + 1) % 0x1000000000000;
  return ID_PREFIX + idCounter.toString(16).padStart(12, '0');
}

/** The client's X-Request-Id when it is well formed (so traces can be joined), else a new one. */
export function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : newRequestId();
}

/** Hop-by-hop headers (RFC 9110 7.6.1, plus the legacy ones still seen): they never cross the proxy. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

/**
 * Headers a `Connection:` list may never remove: framing (dropping it would desynchronise the backend
 * connection) and the headers this proxy sets itself.
 */
const PROTECTED = new Set(['host', 'content-length', 'transfer-encoding', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', FORWARDED_MARK]);

const HOP_BY_HOP_SET = new Set(HOP_BY_HOP);

/** The header names a `Connection:` value lists for removal (never a PROTECTED one). */
function connectionListed(value: string): Set<string> {
  const names = new Set<string>();
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && !PROTECTED.has(name)) names.add(name);
  }
  return names;
}

function removeHopByHop(headers: http.IncomingHttpHeaders): void {
  const listed = headers.connection;
  if (typeof listed === 'string' && listed) for (const name of connectionListed(listed)) delete headers[name];
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h];
}

/** A Transfer-Encoding value as its list of codings: lower case, trimmed, empty items dropped. */
function transferCodings(te: string): string[] {
  return te.toLowerCase().split(',').map((c) => c.trim()).filter(Boolean);
}

/**
 * A request framed with a transfer coding besides `chunked` (`gzip, chunked`): Node's parser accepts any
 * list that ends in chunked, but the forwarder frames bodies as plain chunked only, and a backend sent the
 * decoded chunks under another coding would misread the body. RFC 9112 6.1: answered 501, as nginx does.
 * A list that does not end in chunked is not one: Node's parser refuses it (400) right after the head.
 */
export function unsupportedTransferCoding(req: http.IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  if (te === undefined || te === 'chunked') return false;
  const codings = transferCodings(te);
  return codings.length > 1 && codings[codings.length - 1] === 'chunked';
}

export interface ForwardHeaderContext {
  requestId: string;
  /** Peers whose X-Forwarded-* are believed (config.proxy.trustedProxies). */
  trusted: NetworkSet;
  /** A WebSocket handshake keeps its Connection/Upgrade pair. */
  upgrade?: boolean;
}

/**
 * Rewrites the request's headers for the backend, once per request (retries reuse the result).
 * `xfwd` of http-proxy stays off: it appends to whatever the client sent, so a client could forge its address. Here a client's
 * X-Forwarded-* are replaced, unless the peer is a trusted proxy: then its chain is extended.
 * The rewrite edits req.headers rather than the outgoing request, because http-proxy copies req.headers
 * and its `proxyReq` event is skipped for requests with `Expect`.
 */
export function rewriteRequestHeaders(req: http.IncomingMessage, ctx: ForwardHeaderContext): void {
  const h = req.headers;
  const upgradeTo = ctx.upgrade ? h.upgrade : undefined;
  removeHopByHop(h);
  if (upgradeTo) {
    h.connection = 'Upgrade';
    h.upgrade = upgradeTo;
  }
  const peer = unmapIPv4(req.socket.remoteAddress ?? '');
  const trusted = peer !== '' && ctx.trusted.ranges.length > 0 && ctx.trusted.has(peer);
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const xff = h['x-forwarded-for'];
  h['x-forwarded-for'] = trusted && typeof xff === 'string' && xff ? `${xff}, ${peer}` : peer;
  const xfp = h['x-forwarded-proto'];
  if (!(trusted && typeof xfp === 'string' && /^https?$/i.test(xfp))) h['x-forwarded-proto'] = proto;
  const xfh = h['x-forwarded-host'];
  if (!(trusted && typeof xfh === 'string' && xfh)) {
    if (h.host) h['x-forwarded-host'] = h.host;
    else delete h['x-forwarded-host'];
  }
  if (!trusted) {
    // The other spellings of the same claim: a backend reading them would be as easy to fool.
    delete h.forwarded;
    delete h['x-real-ip'];
  }
  const te = h['transfer-encoding'];
  // Node accepted it with chunked last, in any case and spacing; a backend may only know the plain
  // spelling, and one that misses "CHUNKED" would read the body as the next request on the connection.
  if (te !== undefined) h['transfer-encoding'] = transferCodings(te).join(', ');
  h['x-request-id'] = ctx.requestId;
  h[FORWARDED_MARK] = '1';
}

/**
 * The backend's response headers as they may be sent to the client, or null when one of them would make
 * Node throw (an invalid name or value). Checked before anything is written, so a bad
 * response becomes a clean 502 instead of half-set headers or a crash.
 */
export function responseHeaders(src: http.IncomingHttpHeaders): http.OutgoingHttpHeaders | null {
  // Node's parser joins repeated Connection lines; undici's keeps them as a list.
  const c: unknown = src.connection;
  const connection = Array.isArray(c) ? c.join(', ') : c;
  // "keep-alive" and "close", nearly every answer's, list nothing that is not dropped anyway.
  const listed = typeof connection === 'string' && connection && connection !== 'keep-alive' && connection !== 'close' ? connectionListed(connection) : null;
  // Copies what may pass instead of spreading and deleting: deletes turn the object into a slow
  // dictionary, and this runs on every response (bench/proxy.ts).
  const out: http.OutgoingHttpHeaders = {};
  try {
    for (const name of Object.keys(src)) {
      // Node frames the response to the client itself: transfer-encoding never passes.
      if (HOP_BY_HOP_SET.has(name) || name === 'transfer-encoding' || listed?.has(name)) continue;
      const value = src[name];
      if (value === undefined) continue;
      http.validateHeaderName(name);
      if (Array.isArray(value)) for (const v of value) http.validateHeaderValue(name, v);
      else http.validateHeaderValue(name, value);
      out[name] = value;
    }
  } catch {
    return null;
  }
  return out;
}
