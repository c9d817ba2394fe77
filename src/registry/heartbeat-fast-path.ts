import type http from 'node:http';
import { BODY_LIMIT_BYTES, bodyParserError, forbidden, mayActOn, type ApiErrors } from './api-errors';
import type { AuthThrottle } from './auth-throttle';
import type { RegistryError } from './errors';
import type { Registry } from './registry';
import type { Authenticator } from './tokens';
import { backendView } from './views';

/**
 * PUT /v1/tools/{tool}/backends/{id} in plain node:http, in front of express. Heartbeats are nearly all the
 * control port's traffic, and express's routing and body parsing cost more CPU than everything else a
 * heartbeat does (auth, validation, the Lua upsert). Every step mirrors the express route in order (auth,
 * then media type, then body, then Registry.heartbeatRequest) so each request gets the answer express would
 * give; test/registry/fast-path.test.ts compares the two. Anything this path does not mirror exactly
 * (other spellings of the path, other content types, content encodings, Expect) is left to express.
 */

// Express matches the route case-insensitively, with an optional trailing "/"; those spellings fall through.
const PATH = /^\/v1\/tools\/([^/?#]+)\/backends\/([^/?#]+)(?:\?[^#]*)?$/;
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);
// What body-parser's strict mode allows first: an object or an array, after RFC 8259 whitespace.
const FIRST_NON_WHITESPACE = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d]|$)/;

/** How express would see the body: absent (undefined reaches validation), JSON to read, or null: leave it to express. */
type BodyMode = 'absent' | 'json';

function bodyMode(headers: http.IncomingHttpHeaders): BodyMode | null {
  if (headers.expect !== undefined || headers['content-encoding'] !== undefined) return null;
  const te = headers['transfer-encoding'];
  if (te !== undefined && te !== 'chunked') return null;
  const length = headers['content-length'];
  // type-is: a request without Transfer-Encoding and Content-Length has no body, whatever its type says.
  if (te === undefined && length === undefined) return 'absent';
  const type = headers['content-type'];
  if (type === undefined) return te === undefined && length === '0' ? 'absent' : null;
  return JSON_TYPES.has(type) ? 'json' : null;
}

/** A path segment as express decodes it; null when it does not decode (express answers that one). */
function segment(raw: string): string | null {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

const tooLarge = () => bodyParserError({ type: 'entity.too.large' })!;
const malformed = () => bodyParserError({ type: 'entity.parse.failed' })!;
const unreadable = () => bodyParserError({ type: 'request.aborted', status: 400 })!;

/**
 * The body as text, at most BODY_LIMIT_BYTES. Like body-parser, an oversized body is read to its end
 * before the 413, so the connection stays usable.
 */
function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    if (req.readableEnded) return resolve('');
    if (req.destroyed) return reject(unreadable());
    const declared = req.headers['content-length'];
    let over = declared !== undefined && Number(declared) > BODY_LIMIT_BYTES;
    let size = 0;
    let chunks: Buffer[] = [];
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) {
        over = true;
        chunks = [];
      }
      if (!over) chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      if (over) return reject(tooLarge());
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
      // body-parser decodes through iconv-lite, which drops a byte order mark.
      resolve(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    };
    // The client went away mid-body: nobody reads the answer, but the promise must settle.
    const onAbort = () => {
      done();
      reject(unreadable());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

/** body-parser's strict JSON: an empty body is {}, otherwise an object or an array. */
function parseJson(text: string): unknown {
  if (text.length === 0) return {};
  const first = text[0] === '{' || text[0] === '[' ? text[0] : FIRST_NON_WHITESPACE.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw malformed();
  try {
    return JSON.parse(text);
  } catch {
    throw malformed();
  }
}

/** What express's res.json writes: the same headers, in the same order. */
function send(res: http.ServerResponse, status: number, json: string, extra?: Record<string, string>): void {
  const headers: string[] = [];
  if (extra) for (const k of Object.keys(extra)) headers.push(k, extra[k]);
  headers.push('Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(Buffer.byteLength(json)));
  res.writeHead(status, headers);
  res.end(json);
}

export interface HeartbeatFastPathDeps {
  registry: Registry;
  auth: Authenticator;
  /** The express routes' limit on failed authentications per address: one count for both paths. */
  throttle: AuthThrottle;
  errors: ApiErrors;
}

export class HeartbeatFastPath {
  /** Requests this path answered (tests prove that heartbeats take it). */
  answered = 0;
  private readonly registry: Registry;
  private readonly auth: Authenticator;
  private readonly throttle: AuthThrottle;
  private readonly errors: ApiErrors;

  constructor(deps: HeartbeatFastPathDeps) {
    this.registry = deps.registry;
    this.auth = deps.auth;
    this.throttle = deps.throttle;
    this.errors = deps.errors;
  }

  /** Takes the request (true) or leaves it untouched for express (false). */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    if (req.method !== 'PUT') return false;
    const url = req.url ?? '';
    if (!url.startsWith('/v1/tools/')) return false;
    const m = PATH.exec(url);
    if (!m) return false;
    const mode = bodyMode(req.headers);
    if (mode === null) return false;
    const tool = segment(m[1]);
    const id = segment(m[2]);
    if (tool === null || id === null) return false;
    this.answered++;
    this.serve(req, res, tool, id, mode).catch(() => res.destroy());
    return true;
  };

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, tool: string, id: string, mode: BodyMode): Promise<void> {
    let refusal: RegistryError;
    try {
      const result = await this.auth.authenticate(req.headers.authorization);
      if (!result.ok) {
        // The body says which lease the refused heartbeat asked for; a body that does not parse asks for none.
        const asked = mode === 'json' ? await readBody(req).then(parseJson, () => undefined).catch(() => undefined) : undefined;
        this.registry.heartbeatRefused(tool, req.headers.authorization, result.reason, asked);
        throw this.throttle.refusal(req.socket.remoteAddress, result.reason);
      }
      if (!mayActOn(result.principal, tool)) throw forbidden();
      const body = mode === 'json' ? parseJson(await readBody(req)) : undefined;
      const backend = await this.registry.heartbeatRequest(tool, id, body, result.principal);
      send(res, 200, JSON.stringify(backendView(backend, Date.now())));
      return;
    } catch (err) {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      refusal = this.errors.answer(err, 'PUT', q < 0 ? url : url.slice(0, q));
    }
    send(res, refusal.status, JSON.stringify(refusal.toJSON()), refusal.headers);
  }
}
