import http2 from 'node:http2';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// HTTP/2 requests and responses as the proxy's handler reads and writes HTTP/1.1 ones. Node's compat API
// is close to node:http; these subclasses close the rest, so that the handler and the forwarder carry no
// HTTP/2 case on the path every HTTP/1.1 request takes:
// - the request's headers without pseudo-headers, its :authority as Host (what the backend, an HTTP/1.1
//   server, is sent and what routing reads);
// - `req.socket`: the connection's address, port, TLS version and SNI as they were when the stream came,
//   readable after it closed (Node's proxy of the session socket forgets them once the stream is gone), and
//   the bytes of this stream's answer (the session's socket carries every stream's);
// - `res.destroyed`, which Node's HTTP/2 response lacks;
// - connection-specific headers (RFC 9113 8.2.2) dropped from an answer's head: the proxy's own
//   `connection: close` when it drains, and any a backend's answer would bring.

/** Header names an HTTP/2 message may not carry (`te` only as `trailers`). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** What the handler reads of a request's connection: fixed when the stream arrives, and this stream's bytes. */
export class H2Connection {
  readonly encrypted = true;
  /** Body bytes of this stream's answer written so far (HTTP/2 frames its heads apart, compressed). */
  bytesWritten = 0;

  constructor(
    readonly remoteAddress: string | undefined,
    readonly localPort: number | undefined,
    readonly servername: string | undefined,
    private readonly protocol: string | null,
    private readonly stream: http2.ServerHttp2Stream,
  ) {}

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  getProtocol(): string | null {
    return this.protocol;
  }
}

const CONNECTION = Symbol('h2Connection');
type Tagged = http2.ServerHttp2Stream & { [CONNECTION]?: H2Connection };

/**
 * The request's headers as an HTTP/1.1 request would have them, and its raw list to match. A Host that
 * names another authority than :authority (RFC 9113 8.3.1: malformed) is listed twice, as an HTTP/1.1
 * request with two Host lines is, which routing refuses (400). A body without Content-Length (HTTP/2 frames
 * bodies itself) is marked `transfer-encoding: chunked`, as an HTTP/1.1 body of unknown length comes: it is
 * read, streamed and framed to the backend as one.
 */
function plainHeaders(headers: http2.IncomingHttpHeaders, bodyFollows: boolean): { own: IncomingHttpHeaders; raw: string[] } {
  const own: IncomingHttpHeaders = {};
  const raw: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const value = headers[name];
    own[name] = value as string;
    if (Array.isArray(value)) for (const v of value) raw.push(name, v);
    else if (value !== undefined) raw.push(name, value);
  }
  const authority = headers[':authority'];
  if (typeof authority === 'string' && authority) {
    if (own.host === undefined) {
      own.host = authority;
      raw.push('host', authority);
    } else if (own.host.toLowerCase() !== authority.toLowerCase()) {
      raw.push('host', authority);
    }
  }
  if (bodyFollows && own['content-length'] === undefined) {
    own['transfer-encoding'] = 'chunked';
    raw.push('transfer-encoding', 'chunked');
  }
  return { own, raw };
}

const OWN = Symbol('ownHeaders');
const RAW = Symbol('rawHeaders');

export class H2Request extends http2.Http2ServerRequest {
  [OWN]: IncomingHttpHeaders;
  [RAW]: string[];
  [CONNECTION]: H2Connection;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: unknown, rawHeaders: string[]) {
    // The constructor's options argument is not in @types/node's declaration; Node passes it through.
    super(stream, headers, options as never, rawHeaders);
    const { own, raw } = plainHeaders(headers, !stream.endAfterHeaders);
    this[OWN] = own;
    this[RAW] = raw;
    const s = stream.session?.socket as Partial<import('node:tls').TLSSocket> | undefined;
    const sni = s?.servername;
    this[CONNECTION] = new H2Connection(s?.remoteAddress, s?.localPort, typeof sni === 'string' ? sni : undefined, s?.getProtocol?.() ?? null, stream);
    (stream as Tagged)[CONNECTION] = this[CONNECTION];
  }
}

// Accessors over what the base class declares as properties (TypeScript will not let a subclass do that).
Object.defineProperties(H2Request.prototype, {
  headers: { get(this: H2Request) { return this[OWN]; } },
  rawHeaders: { get(this: H2Request) { return this[RAW]; } },
  socket: { get(this: H2Request) { return this[CONNECTION]; } },
});

/** An answer's headers without the connection-specific ones; the same object when it has none (the usual case). */
function withoutConnectionSpecific(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  let out: OutgoingHttpHeaders | null = null;
  for (const name in headers) {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) continue;
    out ??= { ...headers };
    delete out[name];
  }
  return out ?? headers;
}

export class H2Response extends http2.Http2ServerResponse {
  override setHeader(name: string, value: number | string | readonly string[]): void {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) super.setHeader(name, value);
  }

  override writeHead(statusCode: number, ...rest: unknown[]): this {
    const last = rest[rest.length - 1];
    const headers = typeof last === 'object' && last !== null && !Array.isArray(last) ? withoutConnectionSpecific(last as OutgoingHttpHeaders) : undefined;
    try {
      return headers ? super.writeHead(statusCode, headers) : super.writeHead(statusCode);
    } catch (err) {
      // A head Node refused (a repeated single-value header) leaves its headers set: the error page that
      // follows must not carry them.
      for (const name of this.getHeaderNames()) this.removeHeader(name);
      throw err;
    }
  }

  override destroy(err?: Error): this {
    // A cut answer must read as cut: a stream reset without an error says NO_ERROR, which after part of an
    // answer a client may take for the whole of it.
    super.destroy(err ?? new Error('the answer was cut'));
    return this;
  }

  override write(chunk: string | Uint8Array, encoding?: unknown, cb?: unknown): boolean {
    const c = (this.stream as Tagged)[CONNECTION];
    if (c) c.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return super.write(chunk, encoding as BufferEncoding, cb as () => void);
  }
}

Object.defineProperty(H2Response.prototype, 'destroyed', {
  get(this: H2Response) {
    return this.stream.destroyed;
  },
});

/** Whether a request came over HTTP/2 (the handler's check for a request line of another HTTP than 1.x). */
export function isH2Request(req: unknown): boolean {
  return req instanceof H2Request;
}
