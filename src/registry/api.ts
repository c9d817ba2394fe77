import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from '../logger';
import { RegistryError } from './errors';
import type { Registry } from './registry';
import { StoreUnavailableError, type Store } from './store';
import { Authenticator, type Principal } from './tokens';
import { assignmentView, backendView, toolView } from './views';

export interface RegistryApiDeps {
  registry: Registry;
  adminToken: string;
  store: Store;
  logger: Logger;
  /** How long a verified tool token is trusted without asking the store again (default 1000 ms). */
  tokenCacheMs?: number;
}

const BODY_LIMIT = '16kb';
const RETRY_AFTER_SECONDS = '2';

function sendError(res: Response, err: RegistryError): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).json(err.toJSON());
}

/** Path parameters are single segments on these routes; express's type also allows wildcard arrays. */
function param(req: Request, name: string): string {
  return String(req.params[name]);
}

function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

function forbidden(): RegistryError {
  return new RegistryError(403, 'forbidden', 'this token may not do that', null);
}

/** Admin may act on every tool, a tool token on its own tool only. */
function mayActOn(principal: Principal, tool: string): boolean {
  return principal.kind === 'admin' || principal.tool === tool;
}

/** Which principal may use a route: everyone authenticated ('any', decided later), the admin, or the tool named by a path parameter. */
type Rule = 'any' | 'admin' | { toolParam: string };

function authenticate(auth: Authenticator, rule: Rule): RequestHandler {
  return async (req, res, next) => {
    const result = await auth.authenticate(req.headers.authorization);
    if (!result.ok) {
      const challenge = result.reason === 'missing' ? 'Bearer realm="switchboard"' : 'Bearer realm="switchboard", error="invalid_token"';
      const code = result.reason === 'missing' ? 'missing_token' : 'invalid_token';
      const message = result.reason === 'missing' ? 'send Authorization: Bearer <token>' : 'the bearer token is malformed, unknown or revoked';
      return sendError(res, new RegistryError(401, code, message, null, { 'WWW-Authenticate': challenge }));
    }
    const principal = result.principal;
    if (rule === 'admin' && principal.kind !== 'admin') return sendError(res, forbidden());
    if (typeof rule === 'object' && !mayActOn(principal, param(req, rule.toolParam))) return sendError(res, forbidden());
    res.locals.principal = principal;
    next();
  };
}

/** Body routes take JSON only; a request without a body (or an empty one) is left for validation to refuse. */
const requireJson: RequestHandler = (req, res, next) => {
  const empty = req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
  if (!empty && req.is('application/json') === false) {
    return sendError(res, new RegistryError(415, 'unsupported_media_type', 'the body must be application/json', null));
  }
  next();
};

const parseJson = express.json({ limit: BODY_LIMIT, type: 'application/json' });

/** Body-parser failures carry a `type`; each becomes a JSON error instead of express's HTML page. */
function bodyParserError(err: { type?: unknown; status?: unknown }): RegistryError | null {
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

function errorHandler(logger: Logger): express.ErrorRequestHandler {
  const logUnavailable = throttled(5000);
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof RegistryError) return sendError(res, err);
    if (err instanceof StoreUnavailableError || (err as Error)?.name === 'StoreUnavailableError') {
      if (logUnavailable()) logger.warn({ method: req.method, path: req.path, err: (err as Error).message }, 'store unavailable');
      return sendError(
        res,
        new RegistryError(503, 'store_unavailable', 'the registry store cannot be reached; retry later', null, { 'Retry-After': RETRY_AFTER_SECONDS }),
      );
    }
    const parsed = err !== null && typeof err === 'object' ? bodyParserError(err as { type?: unknown; status?: unknown }) : null;
    if (parsed) return sendError(res, parsed);
    // Only method and path: headers may carry tokens, bodies may carry anything.
    logger.error({ method: req.method, path: req.path, err: (err as Error)?.stack ?? String(err) }, 'registry API request failed');
    sendError(res, new RegistryError(500, 'internal_error', 'internal error', null));
  };
}

/**
 * The registration API. Routes here are the ones docs/openapi.json describes (test/registry/openapi.test.ts
 * holds the two together).
 */
export function registryRouter(deps: RegistryApiDeps): express.Router {
  const { registry, logger } = deps;
  const auth = new Authenticator({ adminToken: deps.adminToken, store: deps.store, cacheMs: deps.tokenCacheMs });
  const router = express.Router();
  const body = [requireJson, parseJson];
  const now = () => Date.now();

  router.put('/v1/tools/:tool/backends/:id', authenticate(auth, { toolParam: 'tool' }), ...body, async (req, res) => {
    const backend = await registry.heartbeatRequest(param(req, 'tool'), param(req, 'id'), req.body);
    res.json(backendView(backend, now()));
  });

  router.delete('/v1/tools/:tool/backends/:id', authenticate(auth, { toolParam: 'tool' }), async (req, res) => {
    if (!(await registry.deregister(param(req, 'tool'), param(req, 'id')))) {
      throw new RegistryError(404, 'no_such_backend', `tool "${param(req, 'tool')}" has no backend "${param(req, 'id')}"`, 'id');
    }
    res.status(204).end();
  });

  router.get('/v1/tools', authenticate(auth, 'admin'), async (_req, res) => {
    const tools = await registry.listTools();
    const t = now();
    res.json({ tools: tools.map((e) => toolView(e, t)) });
  });

  router.get('/v1/tools/:tool', authenticate(auth, { toolParam: 'tool' }), async (req, res) => {
    const entry = await registry.getTool(param(req, 'tool'));
    if (!entry) throw new RegistryError(404, 'no_such_tool', `tool "${param(req, 'tool')}" has no backends and no port assignments`, 'tool');
    res.json(toolView(entry, now()));
  });

  router.get('/v1/ports', authenticate(auth, 'admin'), async (_req, res) => {
    res.json({ assignments: (await registry.listPorts()).map(assignmentView) });
  });

  router.post('/v1/ports', authenticate(auth, 'any'), ...body, async (req, res) => {
    const { tool, host } = registry.validators.portRequestBody(req.body);
    if (!mayActOn(principalOf(res), tool)) throw forbidden();
    res.json(assignmentView(await registry.allocatePort(tool, host)));
  });

  router.delete('/v1/ports/:host/:port', authenticate(auth, 'any'), async (req, res) => {
    const port = registry.validators.port(param(req, 'port'));
    const principal = principalOf(res);
    if (principal.kind !== 'admin') {
      // A tool may release only what it holds; say 403 for another tool's port without naming the holder.
      const held = await registry.getAssignment(param(req, 'host'), port);
      if (held && held.tool !== principal.tool) throw forbidden();
    }
    if (!(await registry.releasePort(param(req, 'host'), port))) {
      throw new RegistryError(404, 'no_such_assignment', `no assignment for ${param(req, 'host')}:${port}`, 'port');
    }
    res.status(204).end();
  });

  router.post('/v1/tools/:tool/tokens', authenticate(auth, 'admin'), async (req, res) => {
    res.status(201).json(await registry.issueToken(param(req, 'tool')));
  });

  router.delete('/v1/tools/:tool/tokens/:tokenId', authenticate(auth, 'admin'), async (req, res) => {
    const revoked = await registry.revokeToken(param(req, 'tool'), param(req, 'tokenId'));
    auth.forget(param(req, 'tokenId'));
    if (!revoked) throw new RegistryError(404, 'no_such_token', `tool "${param(req, 'tool')}" has no token "${param(req, 'tokenId')}"`, 'tokenId');
    res.status(204).end();
  });

  router.use('/v1', (req, res) => {
    sendError(res, new RegistryError(404, 'not_found', `no route ${req.method} ${req.originalUrl.split('?')[0]}`, null));
  });
  router.use(errorHandler(logger));
  return router;
}
