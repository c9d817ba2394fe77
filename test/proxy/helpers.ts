import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { RouteTable, type RouteSource } from '../../src/table/route-table';
import { createProxyServer, type ProxyServer, type ProxyServerOptions } from '../../src/proxy/server';
import type { Assignment, Backend, PolicyRecord, TableSnapshot } from '../../src/registry/types';
import { listen } from '../support/backend';

/** A RouteSource the test sets by hand; set() also says so, as a TableFeed does ('table'), waking held requests. */
export class StaticRoutes extends EventEmitter implements RouteSource {
  constructor(public table: RouteTable | null = RouteTable.empty()) {
    super();
  }
  current(): RouteTable | null {
    return this.table;
  }
  set(table: RouteTable): void {
    this.table = table;
    this.emit('table', table);
  }
}

export function backend(tool: string, id: string, url: string): Backend {
  return { tool, id, url, source: 'registered', registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 };
}

export function assignment(tool: string, port: number, host = '127.0.0.1'): Assignment {
  return { tool, host, port, createdAt: 1 };
}

export function snapshot(backends: Backend[], assignments: Assignment[] = [], version = 1, policies: PolicyRecord[] = []): TableSnapshot {
  return { epoch: 'e1', version, backends, assignments, policies };
}

export function tableOf(backends: Backend[], assignments: Assignment[] = [], policies: PolicyRecord[] = []): RouteTable {
  return RouteTable.fromSnapshot(snapshot(backends, assignments, 1, policies));
}

/** A config with short timeouts, so failure paths finish quickly. */
export function testConfig(proxy: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      ...top,
      proxy: {
        port: 0,
        accessLog: false,
        connectTimeoutMs: 1000,
        responseTimeoutMs: 2000,
        headersTimeoutMs: 2000,
        requestTimeoutMs: 30000,
        keepAliveTimeoutMs: 2000,
        drainTimeoutMs: 2000,
        ...proxy,
      },
    },
  });
}

/** A TCP server that runs `onConnection` on each raw socket: for backends that misbehave below HTTP. */
export async function startRawBackend(onConnection: (s: net.Socket) => void): Promise<{ server: net.Server; port: number; url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConnection(s);
  });
  const port = await listen(server);
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TestProxy {
  proxy: ProxyServer;
  port: number;
  routes: StaticRoutes;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startProxy(
  routes: StaticRoutes,
  config: Config = testConfig(),
  extra: Partial<Omit<ProxyServerOptions, 'config' | 'routes'>> & { logger?: Logger } = {},
): Promise<TestProxy> {
  const metrics = new Metrics();
  const proxy = createProxyServer({ config, routes, logger: extra.logger ?? silentLogger(), metrics, ...extra });
  const port = await proxy.listen(0, '127.0.0.1');
  return { proxy, port, routes, metrics, close: () => proxy.close() };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (no client-side pooling to confuse connection counts). */
export function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes and collects everything until the server closes the connection. */
export function rawRequest(port: number, text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('raw request: no close within timeout'));
    }, timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(text);
  });
}
