import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Roles, Switchboard } from '../../src/app';
import type { Logger } from '../../src/logger';
import type { Store } from '../../src/registry/store';
import { startInProcess as startShared } from '../support/in-process';

export const ADMIN = 'test-admin-token-0123456789abcdef';

/**
 * A tool's server on loopback that tells probes apart from proxied requests: a TCP probe connects and
 * leaves without sending a byte (a "silent" connection), a health probe asks `healthPath`.
 */
export interface ToolServer {
  name: string;
  port: number;
  url: string;
  /** Connections closed without a byte read: TCP probes. */
  silent: number;
  /** Requests for the health path: HTTP probes. */
  healthChecks: number;
  /** Requests for anything else: proxied traffic. */
  served: number;
  /** Status the health path answers. */
  healthStatus: number;
  connections: number;
  close(): Promise<void>;
  /** Listen again on the same port (a restarted tool). */
  restart(): Promise<void>;
}

export async function toolServer(name: string, opts: { healthPath?: string; port?: number } = {}): Promise<ToolServer> {
  const healthPath = opts.healthPath ?? '/healthz';
  let server: http.Server;
  const t: ToolServer = {
    name,
    port: opts.port ?? 0,
    url: '',
    silent: 0,
    healthChecks: 0,
    served: 0,
    healthStatus: 200,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    restart: async () => {
      await listen();
    },
  };
  const listen = async () => {
    server = http.createServer((req, res) => {
      if (req.url === healthPath) {
        t.healthChecks++;
        res.writeHead(t.healthStatus).end('health');
        return;
      }
      t.served++;
      res.end(`${name} ${req.url}`);
    });
    server.on('connection', (s) => {
      t.connections++;
      s.once('close', () => {
        if (s.bytesRead === 0) t.silent++;
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(t.port, '127.0.0.1', () => resolve());
    });
    t.port = (server.address() as AddressInfo).port;
    t.url = `http://127.0.0.1:${t.port}`;
  };
  await listen();
  return t;
}

/** Switchboard in this process on loopback ports the kernel picks, on the store given. */
export function startInProcess(
  store: Store,
  opts: { roles?: Roles; discovery?: Record<string, unknown>; overrides?: Record<string, unknown>; logger?: Logger } = {},
): Promise<Switchboard> {
  const { proxy, ...rest } = (opts.overrides ?? {}) as { proxy?: Record<string, unknown> };
  return startShared({
    adminToken: ADMIN,
    store,
    roles: opts.roles,
    logger: opts.logger,
    overrides: {
      log: { level: 'silent' },
      discovery: { reconcileIntervalMs: 3_600_000, ...(opts.discovery ?? {}) },
      ...rest,
      // holdMs 0: what discovery on the request path answers by itself (holding: test/proxy/proxy-hold.test.ts).
      proxy: { holdMs: 0, ...(proxy ?? {}) },
    },
  });
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** A call to the registration API of a switchboard. */
export async function api(base: string, method: string, path: string, json?: unknown, token: string | null = ADMIN): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/**
 * The state of the incident: the tool once registered (so it holds its port), then its registration
 * vanished while it kept running. Leaves the assignment without a backend.
 */
export async function loseRegistration(control: string, tool: string, url: string): Promise<void> {
  const put = await api(control, 'PUT', `/v1/tools/${tool}/backends/lost`, { url });
  if (put.status !== 200) throw new Error(`register ${tool}: ${put.status} ${put.text}`);
  const del = await api(control, 'DELETE', `/v1/tools/${tool}/backends/lost`);
  if (del.status !== 204) throw new Error(`deregister ${tool}: ${del.status} ${del.text}`);
}

/** One GET through the proxy. */
export async function get(proxyPort: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${proxyPort}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: null, text };
}

export function controlUrl(sb: Switchboard): string {
  return `http://127.0.0.1:${sb.controlPort}`;
}
