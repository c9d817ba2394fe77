import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ADDRESS_ASSIGNED_ELSEWHERE, ADDRESS_NOT_ALLOWED, type ConnectGuard } from '../net/connect-guard';
import type { RouteBackend } from '../table/route-backend';

// What the forwarder promises the server (src/proxy/forwarder.ts). Routing, health, retries and error
// pages are written against these types only.

/** Why a forward failed, in the terms the server and the health module act on. */
export type ForwardFailureKind =
  | 'refused' // no connection: nothing reached the backend
  | 'assigned_elsewhere' // no connection: the backend's name resolved to an address:port another tool holds
  | 'reset' // the backend closed or reset the connection before answering
  | 'timeout' // our own connect or response timer
  | 'bad_gateway' // the backend answered something that cannot be relayed
  | 'client_gone' // the client went away first
  | 'client_timeout' // the client's body went silent for longer than proxy.bodyIdleTimeoutMs
  | 'body_too_large' // the client's streamed body passed the tool's maxBodyBytes
  | 'bad_request'; // the request could not even be sent on

/**
 * A request's body as the forwarder sends it: read whole before a backend was picked (sent from memory, and
 * again on a retry), or streamed from the request as the client sends it. `maxBytes`: the most of a streamed
 * body the backend may be sent (the tool's maxBodyBytes, for a body without a Content-Length to judge).
 */
export type RequestBody = { kind: 'whole'; bytes: Buffer } | { kind: 'stream'; maxBytes?: number };

export type ForwardResult =
  | { kind: 'ok'; status: number }
  | {
      kind: ForwardFailureKind;
      /** connect: no connection yet; request: connected, no answer yet; response: the answer was bad. */
      phase: 'connect' | 'request' | 'response';
      /** No byte of the request can have reached the backend: any method may be retried. */
      notSent: boolean;
      /** A byte of the client's body was consumed: the request cannot be replayed (a retry would send a truncated body). */
      bodyConsumed: boolean;
      /** The underlying error code, for logs only. */
      code: string;
      /**
       * Reset before any answer on a pooled connection: the backend closed it as we reused it (its
       * keep-alive ran out). Says nothing about the backend; a new connection will most likely do.
       */
      staleConnection?: boolean;
    };

export type ForwardFailure = Exclude<ForwardResult, { kind: 'ok' }>;

export type { EngineName } from '../config';
import type { EngineName } from '../config';

export interface ForwarderOptions {
  connectTimeoutMs: number;
  /** Time for the backend to answer, and the longest silence while a body streams either way. */
  responseTimeoutMs: number;
  /** The longest silence of a client's body between two reads while it streams to a backend. */
  bodyIdleTimeoutMs: number;
  /** A streamed body went silent for bodyIdleTimeoutMs (answered 408, or cut once the answer has started). */
  bodyTimedOut?(): void;
  /** A streamed body passed its maxBytes (answered 413, or cut once the answer has started). */
  bodyTooLarge?(): void;
  /** An upgraded connection with no traffic either way for this long is closed (http-proxy sets none). */
  wsIdleTimeoutMs: number;
  agent: { maxSockets: number; freeSocketTimeoutMs: number };
  /** Bytes of answer bodies relayed in a turn of the event loop before the streams take turns (0: no bound). */
  relayBytesPerTurn: number;
  /** Refuses connections to addresses outside allowedNetworks, whatever the table says (none: no check). */
  guard?: ConnectGuard;
  /** Adds the proxy's own headers to a relayed answer's head, after the backend's (so they win). */
  responseHead?(req: http.IncomingMessage, headers: http.OutgoingHttpHeaders): void;
}

export interface Forwarder {
  /** What forwards plain requests: undici, whatever proxy.engine names (WebSocket upgrades: http-proxy). */
  readonly engine: EngineName;
  /**
   * Sends the request to the backend and relays its answer. Resolves once the response head is on its way
   * to the client (`ok`; the body keeps streaming) or with why nothing was relayed; then the response is
   * untouched and the caller answers. Never rejects. `body`: null for a request without one. `fresh`: on a
   * new connection that is not pooled afterwards (the retry after a stale pooled connection).
   * `responseTimeoutMs`: instead of the forwarder's own (a tool policy's responseTimeoutSeconds).
   */
  web(req: http.IncomingMessage, res: http.ServerResponse, backend: RouteBackend, body: RequestBody | null, fresh?: boolean, responseTimeoutMs?: number): Promise<ForwardResult>;
  /**
   * Relays a WebSocket handshake. `onFailure` runs synchronously before the client socket is ended, so
   * the caller can still write an error response on it. Resolves `ok` once 101 was relayed.
   */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, backend: RouteBackend, onFailure: (r: ForwardFailure) => void): Promise<ForwardResult>;
  /** Open upstream connections (pooled and in use), for tests and status. */
  socketCount(): number;
  /** Destroys every upstream connection. */
  close(): void;
}

const REFUSED = new Set([ADDRESS_NOT_ALLOWED, 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);
// UND_ERR_SOCKET: undici's "other side closed" (a FIN where an answer was due).
const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
// A request undici will not send as it stands (or a body shorter than its Content-Length): the client's
// doing, like Node's http.request throwing.
const UNSENDABLE = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']);

export function classify(err: NodeJS.ErrnoException): ForwardFailureKind {
  const code = err.code ?? '';
  if (REFUSED.has(code)) return 'refused';
  if (code === ADDRESS_ASSIGNED_ELSEWHERE) return 'assigned_elsewhere';
  if (RESET.has(code)) return 'reset';
  if (TIMEOUT.has(code)) return 'timeout';
  if (UNSENDABLE.has(code)) return 'bad_request';
  return 'bad_gateway'; // parser errors (HPE_*), invalid headers, anything unexpected
}

/**
 * False for an IP-literal target the guard refuses (outside the allowed networks, or switchboard's own
 * listening socket); names are judged by the guard's lookup when they are resolved. RouteBackends live as
 * long as their table entry: each literal is judged once, not per request.
 */
export function literalJudge(guard: ConnectGuard | undefined): (backend: RouteBackend) => boolean {
  if (!guard) return () => true;
  const verdicts = new WeakMap<RouteBackend, boolean>();
  return (backend) => {
    let ok = verdicts.get(backend);
    if (ok === undefined) {
      const host = backend.target.hostname;
      ok = net.isIP(host) === 0 || guard.allowsEndpoint(host, backend.target.port);
      verdicts.set(backend, ok);
    }
    return ok;
  };
}

/** Why a forward cannot even start (the client is gone; the guard refuses the address), or null. */
export function cannotStart(req: http.IncomingMessage, res: http.ServerResponse, mayConnect: boolean): ForwardFailure | null {
  if (res.destroyed || req.socket.destroyed) return { kind: 'client_gone', phase: 'connect', notSent: true, bodyConsumed: false, code: 'CLIENT_CLOSED' };
  if (!mayConnect) return { kind: 'refused', phase: 'connect', notSent: true, bodyConsumed: false, code: ADDRESS_NOT_ALLOWED };
  return null;
}

export function noop(): void {}
