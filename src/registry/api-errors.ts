import type { Logger } from '../logger';
import { RegistryError } from './errors';
import { StoreUnavailableError } from './store';
import type { AuthResult, Principal } from './tokens';

/**
 * The registration API's refusals, shared by the express router and the heartbeat fast path so both
 * answer every failure with the same status, headers and body.
 */

/** As express.json spells it; the fast path counts the same 16 KiB. */
export const BODY_LIMIT = '16kb';
export const BODY_LIMIT_BYTES = 16 * 1024;
const RETRY_AFTER_SECONDS = '2';

export function authFailure(reason: Exclude<AuthResult, { ok: true }>['reason']): RegistryError {
  const missing = reason === 'missing';
  const challenge = missing ? 'Bearer realm="switchboard"' : 'Bearer realm="switchboard", error="invalid_token"';
  const code = missing ? 'missing_token' : 'invalid_token';
  // A header without the `Bearer ` scheme (the token pasted alone, or `Token <t>`) is the usual slip: say how it is written.
  const message = missing
    ? 'send Authorization: Bearer <token>'
    : reason === 'malformed'
      ? 'the Authorization header must read "Bearer <token>" (the word Bearer, a space, then the token)'
      : 'the bearer token is malformed, unknown or revoked';
  return new RegistryError(401, code, message, null, { 'WWW-Authenticate': challenge });
}

export function forbidden(): RegistryError {
  return new RegistryError(403, 'forbidden', 'this token may not do that', null);
}

/** Admin may act on every tool, a tool token on its own tool only. */
export function mayActOn(principal: Principal, tool: string): boolean {
  return principal.kind === 'admin' || principal.tool === tool;
}

export function unsupportedMediaType(): RegistryError {
  return new RegistryError(415, 'unsupported_media_type', 'the body must be application/json', null);
}

/** Body-parser failures carry a `type`; each becomes a JSON error instead of express's HTML page. */
export function bodyParserError(err: { type?: unknown; status?: unknown }): RegistryError | null {
  switch (err.type) {
    case 'entity.parse.failed':
      return new RegistryError(400, 'malformed_json', 'the body is not valid JSON', null);
    case 'entity.too.large':
      return new RegistryError(413, 'body_too_large', `the body is larger than ${BODY_LIMIT}`, null);
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new RegistryError(415, 'unsupported_media_type', 'the body must be JSON in UTF-8 without content encoding', null);
    default:
      if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
        return new RegistryError(err.status, 'bad_request', 'the request body could not be read', null);
      }
      return null;
  }
}

/** Logs at most one line per interval: a dead store would otherwise produce one line per heartbeat. */
function throttled(intervalMs: number): () => boolean {
  let last = 0;
  return () => {
    const now = Date.now();
    if (now - last < intervalMs) return false;
    last = now;
    return true;
  };
}

/**
 * Turns whatever a handler threw into the answer to send. One instance per API, so the "store unavailable"
 * log throttle is shared by both paths.
 */
export class ApiErrors {
  private readonly logUnavailable = throttled(5000);

  constructor(private readonly logger: Logger) {}

  answer(err: unknown, method: string, path: string): RegistryError {
    if (err instanceof RegistryError) return err;
    if ((err as Error)?.name === 'NotReplicatedError') {
      if (this.logUnavailable()) this.logger.warn({ event: 'store.not_replicated', method, path, err: (err as Error).message }, 'write not acknowledged by enough replicas');
      return new RegistryError(
        503,
        'not_replicated',
        'the change was applied on the Redis master, but fewer replicas than redis.waitReplicas acknowledged it in time: it may be lost if the master fails now; retry later',
        null,
        { 'Retry-After': RETRY_AFTER_SECONDS },
      );
    }
    if (err instanceof StoreUnavailableError || (err as Error)?.name === 'StoreUnavailableError') {
      if (this.logUnavailable()) this.logger.warn({ event: 'store.unavailable', method, path, err: (err as Error).message }, 'store unavailable');
      return new RegistryError(503, 'store_unavailable', 'the registry store cannot be reached; retry later', null, { 'Retry-After': RETRY_AFTER_SECONDS });
    }
    const parsed = err !== null && typeof err === 'object' ? bodyParserError(err as { type?: unknown; status?: unknown }) : null;
    if (parsed) return parsed;
    // Only method and path: headers may carry tokens, bodies may carry anything.
    this.logger.error({ event: 'api.internal_error', method, path, err: (err as Error)?.stack ?? String(err) }, 'registry API request failed');
    return new RegistryError(500, 'internal_error', 'internal error', null);
  }
}
