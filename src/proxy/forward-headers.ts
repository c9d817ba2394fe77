import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { unmapIPv4 } from '../net/networks';
import { dropForbiddenNames } from './header-filter';
import { FORWARDED_MARK, HOP_BY_HOP, HOP_BY_HOP_SET, PROTECTED } from './header-names';
import type { ForwardPolicy } from './forward-policy';
import { forwardedElement } from './forwarded';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

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
  policy: ForwardPolicy;
  /** The tool the request is routed to (the table's name). */
  tool: string;
  /** Routed by its path's first segment (`/<tool>/...`) rather than by its Host. */
  byPath: boolean;
  /** A WebSocket handshake keeps its Connection/Upgrade pair. */
  upgrade?: boolean;
}

/**
 * Rewrites the request's headers for the backend, once per request (retries reuse the result).
 * `xfwd` of http-proxy stays off: it appends to whatever the client sent, so a client could forge its address. Here a client's
 * X-Forwarded-* are replaced, unless the peer is a trusted proxy: then its chain is extended.
 * The rewrite edits req.headers rather than the outgoing request: undici sends req.headers as they are,
 * and http-proxy, which relays WebSocket upgrades, copies them.
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
  const trusted = peer !== '' && ctx.policy.trusted.ranges.length > 0 && ctx.policy.trusted.has(peer);
  dropForbiddenNames(h, trusted, ctx.policy.allowUnderscoreHeaders);
  setXForwarded(req, peer, trusted);
  setPortAndPrefix(req, trusted, ctx);
  h.via = ctx.policy.via.stamped(req);
  if (h.host === undefined) h.host = ctx.policy.hostFor(ctx.tool);
  const te = h['transfer-encoding'];
  // Node accepted it with chunked last, in any case and spacing; a backend may only know the plain
  // spelling, and one that misses "CHUNKED" would read the body as the next request on the connection.
  if (te !== undefined) h['transfer-encoding'] = transferCodings(te).join(', ');
  h['x-request-id'] = ctx.requestId;
  h[FORWARDED_MARK] = '1';
}

/** X-Forwarded-For, -Proto, -Host and Forwarded: the peer's, or a trusted proxy's chain extended with it. */
function setXForwarded(req: http.IncomingMessage, peer: string, trusted: boolean): void {
  const h = req.headers;
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
  // Forwarded (RFC 7239) says the same: a client's was dropped with its other claims, a trusted proxy's is extended.
  const fwd = h.forwarded;
  const element = forwardedElement(peer, h.host, proto);
  h.forwarded = trusted && typeof fwd === 'string' && fwd ? `${fwd}, ${element}` : element;
}

/** The last local port written as text, and its text: a proxy listens on one port, so this is nearly always a hit. */
let portNumber = -1;
let portText = '';

/**
 * X-Forwarded-Port: the port the client connected to. X-Forwarded-Prefix: `/<tool>` for a request routed
 * by its path, which reaches the backend unchanged, prefix included; the header says what the prefix is.
 * A trusted proxy's values are kept: it knows the port and path the client used in front of it.
 */
function setPortAndPrefix(req: http.IncomingMessage, trusted: boolean, ctx: ForwardHeaderContext): void {
  const h = req.headers;
  if (!trusted || h['x-forwarded-port'] === undefined) {
    const port = req.socket.localPort ?? 0;
    if (port !== portNumber) {
      portNumber = port;
      portText = String(port);
    }
    h['x-forwarded-port'] = portText;
  }
  if (ctx.byPath && (!trusted || h['x-forwarded-prefix'] === undefined)) h['x-forwarded-prefix'] = `/${ctx.tool}`;
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
