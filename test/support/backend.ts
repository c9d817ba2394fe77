import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** A real HTTP backend on loopback: registrations and proxies point at live servers, as in production. */
export interface Backend {
  name: string;
  server: http.Server;
  port: number;
  url: string;
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests received so far. */
  requests: number;
  /** The last RECENT requests received (a count, not a log: traffic runs send hundreds of thousands). */
  recent: http.IncomingMessage[];
  /** The requests received after the first `count` (of the recent ones). */
  since(count: number): http.IncomingMessage[];
  close(): Promise<void>;
}

const RECENT = 100;

/**
 * Starts a backend. `answer` is a name (the backend answers 200 `<name> <path>`, which tells a test which
 * backend a proxy reached) or a handler of its own (one that never answers holds every request).
 * Idle connections are kept 30 s, longer than any test leaves one idle, so a pooled connection closes
 * only when the proxy closes it.
 */
export async function startBackend(answer: string | http.RequestListener, opts: { port?: number } = {}): Promise<Backend> {
  const handler: http.RequestListener = typeof answer === 'string' ? (req, res) => res.end(`${answer} ${req.url}`) : answer;
  const server = http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  const b: Backend = {
    name: typeof answer === 'string' ? answer : 'backend',
    server,
    port: 0,
    url: '',
    connections: 0,
    requests: 0,
    recent: [],
    since: (count) => b.recent.slice(Math.max(0, b.recent.length - (b.requests - count))),
    close: () => closeServer(server),
  };
  server.on('connection', () => b.connections++);
  server.on('request', (req: http.IncomingMessage) => {
    b.requests++;
    b.recent.push(req);
    if (b.recent.length > RECENT) b.recent.shift();
  });
  b.port = await listen(server, opts.port);
  b.url = `http://127.0.0.1:${b.port}`;
  return b;
}

/** Listens on loopback (on `port`, else one the kernel picks) and answers the port. */
export function listen(server: net.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server and every connection it holds, idle or not. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A loopback port nothing listens on (connections to it are refused): bound, noted, closed. */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
