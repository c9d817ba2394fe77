import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { createControlApp } from '../../src/control/app';
import { controlListener } from '../../src/control/fast-paths';
import { createRegistryApi } from '../../src/registry/api';
import type { HeartbeatFastPath } from '../../src/registry/heartbeat-fast-path';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import { Registry } from '../../src/registry/registry';
import type { Store } from '../../src/registry/store';
import type { Lookup } from '../../src/registry/url-policy';
import { RedisServer, freePort } from '../support/redis-server';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** A kind of store the API suites run against: one shared setup per file, a fresh store per test. */
export interface StoreKind {
  name: 'memory' | 'redis';
  redis: RedisServer | null;
  before(): Promise<void>;
  create(): Promise<Store>;
  after(): Promise<void>;
}

export function storeKinds(): StoreKind[] {
  const redis = new RedisServer();
  return [
    {
      name: 'memory',
      redis: null,
      async before() {},
      async create() {
        return new MemoryStore();
      },
      async after() {},
    },
    {
      name: 'redis',
      redis,
      async before() {
        await redis.start();
      },
      async create() {
        // A unique key prefix per test keeps tests apart on one server.
        return RedisStore.connect({ url: redis.url, keyPrefix: `api:${randomUUID()}:`, commandTimeoutMs: 500, logger: silentLogger() });
      },
      async after() {
        await redis.stop();
      },
    },
  ];
}

export interface Api {
  base: string;
  config: Config;
  store: Store;
  registry: Registry;
  metrics: Metrics;
  /** The heartbeat fast path in front of express; null when started with fastPath: false. */
  heartbeats: HeartbeatFastPath | null;
  call(method: string, path: string, opts?: CallOptions): Promise<Reply>;
  close(): Promise<void>;
}

export interface CallOptions {
  token?: string | null;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent verbatim (with contentType, default application/json). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

export interface ApiOptions {
  store: Store;
  lookup?: Lookup;
  logger?: Logger;
  overrides?: Record<string, unknown>;
  /** False: express answers every request, as if there were no fast path (to compare the two). */
  fastPath?: boolean;
  /** Failed authentications per client address and minute before 429s (default: the configuration's). */
  authFailuresPerMinute?: number;
}

/**
 * The registration API on a real loopback socket, listening on the configured control port, composed as
 * startSwitchboard composes the control port: the control app with the registry's router behind the
 * heartbeat fast path.
 */
export async function startApi(opts: ApiOptions): Promise<Api> {
  const controlPort = await freePort();
  const config = loadConfig({
    env: {},
    overrides: {
      adminToken: ADMIN_TOKEN,
      control: { port: controlPort },
      proxy: { port: 18080 },
      ports: { min: 47000, max: 47002 },
      log: { level: 'silent' },
      ...(opts.overrides ?? {}),
    },
  });
  const logger = opts.logger ?? silentLogger();
  const metrics = new Metrics();
  const registry = new Registry({ store: opts.store, config, metrics, logger, lookup: opts.lookup });
  const api = createRegistryApi({ registry, adminToken: ADMIN_TOKEN, store: opts.store, logger, metrics, authFailuresPerMinute: opts.authFailuresPerMinute });
  const heartbeats = opts.fastPath === false ? null : api.heartbeats;
  const app = createControlApp({ metrics, readiness: [], routers: [api.router] });
  const server = http.createServer(controlListener(app, heartbeats ? [heartbeats.handle] : []));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(controlPort, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function call(method: string, path: string, o: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? ADMIN_TOKEN : o.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (o.json !== undefined) body = JSON.stringify(o.json);
    if (o.raw !== undefined) body = o.raw;
    if (body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    const res = await fetch(base + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  return {
    base,
    config,
    store: opts.store,
    registry,
    metrics,
    heartbeats,
    call,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
