import type http from 'node:http';
import type https from 'node:https';
import type { Config } from '../config';

/** Request head limit; a bigger head is answered 431 (Node's default, set here so a flag cannot raise it). */
const MAX_HEADER_BYTES = 16 * 1024;

/** The options every listener of the proxy is created with, plain or TLS: one parser, one set of limits. */
export function httpServerOptions(pc: Config['proxy']): http.ServerOptions {
  const headersTimeout = Math.min(pc.headersTimeoutMs, pc.requestTimeoutMs);
  return {
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
  };
}

/** The limits set on a listener once it exists (the constructor's options do not cover them). */
export function applyHttpLimits(server: http.Server | https.Server, pc: Config['proxy']): void {
  server.keepAliveTimeout = pc.keepAliveTimeoutMs;
  // Node drops headers past maxHeadersCount (2000) from req.headers after its parser framed the body by
  // them: a Transfer-Encoding at position 2001 would frame the body here but vanish from the forwarded
  // request, whose body would then reach the backend unframed, as the next request. Keep every header; the
  // head stays bounded by maxHeaderSize.
  server.maxHeadersCount = 0;
}
