import http from 'node:http';
import openapi from '../../docs/openapi.json';
import { startSwitchboard } from '../../src/app';
import { loadConfig } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import type { Store } from '../../src/registry/store';
import { ADMIN_TOKEN, startApi } from '../registry/harness';
import { freePort } from '../support/redis-server';

export { ADMIN_TOKEN };

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** One operation of docs/openapi.json. */
export interface DocRoute {
  /** "PUT /v1/tools/{tool}/backends/{id}" */
  key: string;
  method: string;
  path: string;
  operationId: string;
  /** `security: []` on the operation: no token needed. */
  public: boolean;
  hasBody: boolean;
  /** The first example of the JSON request body, if the document gives one. */
  example?: unknown;
}

type Operation = {
  operationId?: string;
  security?: unknown[];
  requestBody?: { content?: Record<string, { example?: unknown }> };
};

/** Every operation the API document lists, read afresh: routes added while this runs are covered too. */
export function documentedRoutes(): DocRoute[] {
  const doc = openapi as unknown as { paths: Record<string, Record<string, Operation>> };
  const out: DocRoute[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.includes(m)) continue;
      const method = m.toUpperCase();
      out.push({
        key: `${method} ${path}`,
        method,
        path,
        operationId: op.operationId ?? `${method} ${path}`,
        public: Array.isArray(op.security) && op.security.length === 0,
        hasBody: op.requestBody !== undefined,
        example: op.requestBody?.content?.['application/json']?.example,
      });
    }
  }
  return out;
}

/** Fills `{name}` path parameters; throws naming the first one without a value. */
export function fillPath(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`no value for path parameter {${name}} of ${template}`);
    return encodeURIComponent(v);
  });
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

export interface RawRequest {
  method: string;
  /** Sent verbatim as the request target. */
  path: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | string;
}

/**
 * A client that sends the path exactly as given (fetch would resolve dot segments and re-encode), over a
 * bounded keep-alive pool.
 */
export class Client {
  readonly agent: http.Agent;
  constructor(
    readonly base: string,
    maxSockets = 4,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  send(r: RawRequest, timeoutMs = 10_000): Promise<Reply> {
    const u = new URL(this.base);
    const headers = { ...r.headers };
    // Node frames a DELETE/GET/OPTIONS body with nothing at all unless told its length: the bytes would
    // then arrive as the next request on the connection.
    if (r.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
      headers['content-length'] = String(Buffer.byteLength(r.body));
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: Number(u.port), method: r.method, path: r.path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = null;
            try {
              body = text ? JSON.parse(text) : null;
            } catch {
              body = null;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms: ${r.method} ${r.path}`)));
      req.on('error', reject);
      req.end(r.body);
    });
  }

  /** JSON in, admin token unless another is given (null: none). */
  call(method: string, path: string, opts: { token?: string | null; json?: unknown } = {}): Promise<Reply> {
    const headers: http.OutgoingHttpHeaders = {};
    const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] = 'application/json';
    }
    return this.send({ method, path, headers, body });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Tokens for the principals the suites play: tool `alpha` (own), tool `beta` (other), a revoked `alpha` token. */
export interface Principals {
  own: string;
  other: string;
  revoked: string;
}

export async function issuePrincipals(client: Client): Promise<Principals> {
  const issue = async (tool: string) => {
    const r = await client.call('POST', `/v1/tools/${tool}/tokens`);
    if (r.status !== 201) throw new Error(`token for ${tool}: ${r.status} ${r.text}`);
    return r.body as { id: string; token: string };
  };
  const revoked = await issue('alpha');
  const del = await client.call('DELETE', `/v1/tools/alpha/tokens/${revoked.id}`);
  if (del.status !== 204) throw new Error(`revoke: ${del.status} ${del.text}`);
  return { own: (await issue('alpha')).token, other: (await issue('beta')).token, revoked: revoked.token };
}

/** The registration API as a test talks to it. */
export interface Target {
  name: string;
  base: string;
  store: Store;
  /** Requests the heartbeat fast path answered (null: not known for this composition). */
  fastPathAnswered(): number | null;
  close(): Promise<void>;
}

/**
 * The registry test harness (test/registry/harness.ts), the composition the registry tests use.
 * `fastPath: false`: express answers heartbeats too, as if the heartbeat fast path were not there.
 */
export async function harnessTarget(
  store: Store,
  overrides: Record<string, unknown> = {},
  opts: { logger?: Logger; fastPath?: boolean; authFailuresPerMinute?: number } = {},
): Promise<Target> {
  const api = await startApi({ store, overrides, logger: opts.logger, fastPath: opts.fastPath, authFailuresPerMinute: opts.authFailuresPerMinute });
  return { name: 'harness', base: api.base, store, fastPathAnswered: () => api.heartbeats?.answered ?? null, close: () => api.close() };
}

/** The production composition: startSwitchboard, as `switchboard serve` runs it, on the given store. */
export async function appTarget(
  store: Store,
  opts: { overrides?: Record<string, unknown>; logger?: Logger; proxy?: boolean; registry?: boolean } = {},
): Promise<Target & { proxyPort: number | null; controlPort: number; stop(): Promise<void> }> {
  const controlPort = await freePort();
  const proxyPort = opts.proxy ? await freePort() : 18080;
  const base: Record<string, unknown> = {
    adminToken: ADMIN_TOKEN,
    host: '127.0.0.1',
    control: { port: controlPort },
    proxy: { port: proxyPort },
    log: { level: 'silent' },
  };
  const overrides: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    const b = base[k];
    overrides[k] = b && typeof b === 'object' && v && typeof v === 'object' ? { ...b, ...v } : v;
  }
  const config = loadConfig({ env: {}, overrides });
  const sb = await startSwitchboard({
    config,
    roles: { registry: opts.registry ?? true, proxy: opts.proxy ?? false },
    logger: opts.logger ?? silentLogger(),
    store,
    defaultMetrics: false,
  });
  return {
    name: 'app',
    base: `http://127.0.0.1:${sb.controlPort}`,
    store,
    proxyPort: sb.proxyPort,
    controlPort: sb.controlPort,
    fastPathAnswered: () => null,
    stop: () => sb.stop(),
    close: () => sb.stop(),
  };
}

/**
 * What a request could change, read from the store: the table (backends, assignments, version) plus the
 * token writes seen through the wrapper. Compared before and after a request.
 */
export interface StoreWatch {
  store: Store;
  state(): Promise<string>;
}

export function watchStore(inner: Store): StoreWatch {
  let tokenWrites = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'putToken') {
        return async (...args: unknown[]) => {
          const r = await v.apply(target, args);
          tokenWrites++;
          return r;
        };
      }
      if (prop === 'revokeToken') {
        return async (...args: unknown[]) => {
          const r = await v.apply(target, args);
          if (r) tokenWrites++;
          return r;
        };
      }
      return v.bind(target);
    },
  });
  return {
    store,
    async state() {
      const s = await inner.snapshot();
      const byKey = <T>(list: T[], key: (x: T) => string) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      return JSON.stringify({
        version: s.version,
        backends: byKey(s.backends, (b) => `${b.tool}/${b.id}`),
        assignments: byKey(s.assignments, (a) => `${a.host}:${a.port}`),
        tokenWrites,
      });
    },
  };
}

/** The error body every API refusal carries. */
export function isErrorBody(body: unknown): boolean {
  const e = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  return !!e && typeof e.code === 'string' && typeof e.message === 'string' && (e.field === null || typeof e.field === 'string');
}
