import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { ApiErrors, BODY_LIMIT, forbidden, mayActOn, unsupportedMediaType } from './api-errors';
import { AuthThrottle } from './auth-throttle';
import { RegistryError } from './errors';
import { HeartbeatFastPath } from './heartbeat-fast-path';
import { Policies } from './policies';
import { addPolicyRoutes } from './policy-routes';
import type { Registry } from './registry';
import type { Store } from './store';
import type { Backend } from './types';
import type { RefusalReason } from './heartbeat-refusals';
import { Authenticator, type Principal, type TokenSigner } from './tokens';
import { assignmentView, backendView, toolView } from './views';

export interface RegistryApiDeps {
  registry: Registry;
  adminToken: string;
  store: Store;
  logger: Logger;
  /** Counts refused credentials (switchboard_auth_failures_total). */
  metrics: Metrics;
  /** How long a verified tool token is trusted without asking the store again (default 1000 ms). */
  tokenCacheMs?: number;
  /** Checks and writes discoveries reported by proxies; null or absent: discovery is turned off. */
  discoveries?: DiscoveryConfirmer | null;
  /** Verifies signed tool tokens (the registry's token keys); absent: only stored tokens verify. */
  signer?: TokenSigner | null;
  /** Failed authentications per client address and minute before 429s (default: the configuration's). */
  authFailuresPerMinute?: number;
  /** The operator's policies (default: over `store`, with the registry's configuration). */
  policies?: Policies;
}

/** The registry side of fallback discovery (src/discovery/healer.ts). */
export interface DiscoveryConfirmer {
  confirm(tool: string, host: string, port: number): Promise<{ backend: Backend; created: boolean }>;
}

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

/** Which principal may use a route: everyone authenticated ('any', decided later), the admin, or the tool named by a path parameter. */
type Rule = 'any' | 'admin' | { toolParam: string };

/** Told of a request refused 401 before the answer is sent. */
type OnRefused = (req: Request, res: Response, reason: RefusalReason) => Promise<void>;

/** Judges a request's credentials; a refusal is 401, or 429 once its client address failed too often. */
interface Gate {
  auth: Authenticator;
  throttle: AuthThrottle;
}

function authenticate(gate: Gate, rule: Rule, onRefused?: OnRefused): RequestHandler {
  return async (req, res, next) => {
    const result = await gate.auth.authenticate(req.headers.authorization);
    if (!result.ok) {
      if (onRefused) await onRefused(req, res, result.reason);
      return sendError(res, gate.throttle.refusal(req.socket.remoteAddress, result.reason));
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
    return sendError(res, unsupportedMediaType());
  }
  next();
};

const parseJson = express.json({ limit: BODY_LIMIT, type: 'application/json' });

/** A refused heartbeat, as the fast path records it: with the lease its body asked for, if it parses. */
function heartbeatRefused(registry: Registry): OnRefused {
  return async (req, res, reason) => {
    const body = await new Promise<unknown>((resolve) => parseJson(req, res, (err?: unknown) => resolve(err ? undefined : req.body)));
    registry.heartbeatRefused(param(req, 'tool'), req.headers.authorization, reason, body);
  };
}

function errorHandler(errors: ApiErrors): express.ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(res, errors.answer(err, req.method, req.path));
  };
}

export interface RegistryApi {
  router: express.Router;
  /** Answers heartbeats before express sees them; the router answers everything it leaves. */
  heartbeats: HeartbeatFastPath;
  /** Shared by both: the registry's durable copy reads the revocations it has seen. */
  auth: Authenticator;
}

/**
 * The registration API: the express router and the heartbeat fast path, sharing one Authenticator (so a
 * revocation reaches both at once) and one error mapping.
 */
export function createRegistryApi(deps: RegistryApiDeps): RegistryApi {
  const auth = new Authenticator({ adminToken: deps.adminToken, store: deps.store, signer: deps.signer, cacheMs: deps.tokenCacheMs, metrics: deps.metrics });
  const perMinute = deps.authFailuresPerMinute ?? deps.registry.config.control.authFailuresPerMinute;
  const throttle = new AuthThrottle({ perMinute, logger: deps.logger, metrics: deps.metrics });
  const errors = new ApiErrors(deps.logger);
  return {
    router: buildRouter(deps.registry, { auth, throttle }, errors, deps.discoveries ?? null, deps.policies ?? new Policies(deps.store, deps.registry.config, deps.logger)),
    heartbeats: new HeartbeatFastPath({ registry: deps.registry, auth, throttle, errors }),
    auth,
  };
}

/** The router alone (test/registry/openapi.test.ts reads its route table). */
export function registryRouter(deps: RegistryApiDeps): express.Router {
  return createRegistryApi(deps).router;
}

/**
 * Routes here are the ones docs/openapi.json describes (test/registry/openapi.test.ts holds the two
 * together). PUT /v1/tools/{tool}/backends/{id} is usually answered by the fast path; this route answers
 * the requests the fast path leaves to express, with the same rules.
 */
function buildRouter(registry: Registry, gate: Gate, errors: ApiErrors, discoveries: DiscoveryConfirmer | null, policies: Policies): express.Router {
  const router = express.Router();
  const body = [requireJson, parseJson];
  const now = () => Date.now();

  router.put('/v1/tools/:tool/backends/:id', authenticate(gate, { toolParam: 'tool' }, heartbeatRefused(registry)), ...body, async (req, res) => {
    const backend = await registry.heartbeatRequest(param(req, 'tool'), param(req, 'id'), req.body, principalOf(res));
    res.json(backendView(backend, now()));
  });

  router.delete('/v1/tools/:tool/backends/:id', authenticate(gate, { toolParam: 'tool' }), async (req, res) => {
    const tool = param(req, 'tool');
    const id = param(req, 'id');
    const instance = req.query.instance;
    // Without ?instance= (admin tooling, older clients) the backend goes whoever registered it.
    const result =
      instance === undefined
        ? (await registry.deregister(tool, id)) ? 'removed' : 'absent'
        : await registry.deregisterOwned(tool, id, instance);
    if (result === 'absent') throw new RegistryError(404, 'no_such_backend', `tool "${tool}" has no backend "${id}"`, 'id');
    if (result === 'instance_mismatch') {
      const message = `backend "${id}" of tool "${tool}" is held by another instance than "${String(instance)}" (its newest heartbeat); nothing was removed`;
      throw new RegistryError(409, 'instance_mismatch', message, 'instance');
    }
    res.status(204).end();
  });

  router.get('/v1/tools', authenticate(gate, 'admin'), async (_req, res) => {
    const tools = await registry.listTools();
    const t = now();
    res.json({ tools: tools.map((e) => toolView(e, t)) });
  });

  router.get('/v1/tools/:tool', authenticate(gate, { toolParam: 'tool' }), async (req, res) => {
    const entry = await registry.getTool(param(req, 'tool'));
    if (!entry) throw new RegistryError(404, 'no_such_tool', `tool "${param(req, 'tool')}" has no backends and no port assignments`, 'tool');
    res.json(toolView(entry, now()));
  });

  router.get('/v1/ports', authenticate(gate, 'admin'), async (_req, res) => {
    res.json({ assignments: (await registry.listPorts()).map(assignmentView) });
  });

  router.post('/v1/ports', authenticate(gate, 'any'), ...body, async (req, res) => {
    const { tool, host } = registry.validators.portRequestBody(req.body);
    if (!mayActOn(principalOf(res), tool)) throw forbidden();
    res.json(assignmentView(await registry.allocatePort(tool, host)));
  });

  router.delete('/v1/ports/:host/:port', authenticate(gate, 'any'), async (req, res) => {
    const port = registry.validators.port(param(req, 'port'));
    const principal = principalOf(res);
    // A name stands for its addresses: the port is released on each of them.
    const held = await registry.assignmentsAt(param(req, 'host'), port);
    // A tool may release only what it holds; say 403 for another tool's port without naming the holder.
    if (principal.kind !== 'admin' && held.some((a) => a.tool !== principal.tool)) throw forbidden();
    if ((await registry.releaseAssignments(held)).length === 0) {
      throw new RegistryError(404, 'no_such_assignment', `no assignment for ${param(req, 'host')}:${port}`, 'port');
    }
    res.status(204).end();
  });

  router.post('/v1/tools/:tool/discoveries', authenticate(gate, { toolParam: 'tool' }), ...body, async (req, res) => {
    const { host, port } = registry.validators.discoveryRequestBody(req.body);
    if (!discoveries) throw new RegistryError(409, 'discovery_disabled', 'fallback port discovery is turned off on this registry (discovery.enabled)', null);
    const { backend, created } = await discoveries.confirm(param(req, 'tool'), host, port);
    res.status(created ? 201 : 200).json(backendView(backend, now()));
  });

  router.post('/v1/tools/:tool/tokens', authenticate(gate, 'admin'), async (req, res) => {
    res.status(201).json(await registry.issueToken(param(req, 'tool')));
  });

  router.delete('/v1/tools/:tool/tokens/:tokenId', authenticate(gate, 'admin'), async (req, res) => {
    const revoked = await registry.revokeToken(param(req, 'tool'), param(req, 'tokenId'));
    gate.auth.revoke(param(req, 'tokenId'));
    if (!revoked) throw new RegistryError(404, 'no_such_token', `tool "${param(req, 'tool')}" has no token "${param(req, 'tokenId')}"`, 'tokenId');
    res.status(204).end();
  });

  addPolicyRoutes(router, policies, {
    admin: authenticate(gate, 'admin'),
    ofTool: authenticate(gate, { toolParam: 'tool' }),
    body,
    tool: (req) => registry.validators.tool(param(req, 'tool')),
  });

  router.use('/v1', (req, res) => {
    sendError(res, new RegistryError(404, 'not_found', `no route ${req.method} ${req.originalUrl.split('?')[0]}`, null));
  });
  router.use(errorHandler(errors));
  return router;
}
