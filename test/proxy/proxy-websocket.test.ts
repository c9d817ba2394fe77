import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { StaticRoutes, backend, rawRequest, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { waitFor } from '../support/wait';
import { deadPort, listen, closeServer } from '../support/backend';
import { capturingLogger } from '../support/logs';

interface Client {
  ws: WebSocket;
  /** Next message, including those that arrived with the handshake, before anyone listened. */
  next(): Promise<string>;
}

function open(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const queue: string[] = [];
    const waiting: Array<(m: string) => void> = [];
    ws.on('message', (d) => {
      const m = d.toString();
      const w = waiting.shift();
      if (w) w(m);
      else queue.push(m);
    });
    const next = () => new Promise<string>((r) => (queue.length ? r(queue.shift()!) : waiting.push(r)));
    ws.once('open', () => resolve({ ws, next }));
    ws.once('error', reject);
  });
}

/** The status of a handshake that was refused, or of the socket closing without an answer (0). */
function handshakeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => resolve(101));
    ws.once('error', () => resolve(0));
  });
}

describe('proxy WebSockets', () => {
  let echoServer: http.Server;
  let wss: WebSocketServer;
  let echoPort: number;
  let wrong: http.Server;
  let wrongPort: number;
  const wrongSockets: net.Socket[] = [];
  /** Backend sockets whose peer (the proxy) closed its end. */
  const wrongEnded = new Set<net.Socket>();
  let p: TestProxy;
  let lines: Array<Record<string, unknown>> = [];

  before(async () => {
    echoServer = http.createServer();
    wss = new WebSocketServer({ server: echoServer });
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.url} xff=${req.headers['x-forwarded-for']} rid=${req.headers['x-request-id'] ? 'yes' : 'no'}`);
      ws.on('message', (d) => ws.send(`echo:${d.toString()}`));
    });
    echoPort = await listen(echoServer);
    // Answers the upgrade with a plain 200 and keeps its end open.
    wrong = http.createServer((_req, res) => res.end('not a websocket'));
    wrong.on('upgrade', (_req, socket: net.Socket) => {
      wrongSockets.push(socket);
      socket.on('end', () => wrongEnded.add(socket));
      socket.on('close', () => wrongEnded.add(socket));
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello');
    });
    wrongPort = await listen(wrong);
    const dead = await deadPort();
    const routes = new StaticRoutes(
      tableOf([
        backend('ws', 'w1', `http://127.0.0.1:${echoPort}`),
        backend('wrong', 'x1', `http://127.0.0.1:${wrongPort}`),
        backend('gone', 'g1', `http://127.0.0.1:${dead}`),
      ]),
    );
    const captured = capturingLogger('info');
    lines = captured.lines;
    p = await startProxy(routes, testConfig({ accessLog: true }), { wsIdleTimeoutMs: 300, logger: captured.logger });
  });
  after(async () => {
    await p.close();
    for (const s of wrongSockets) s.destroy();
    wss.close();
    await closeServer(echoServer);
    await closeServer(wrong);
  });

  it('relays a WebSocket both ways, with forwarded headers', async () => {
    const { ws, next } = await open(`ws://127.0.0.1:${p.port}/ws/socket?x=1`);
    try {
      assert.equal(await next(), 'hello /ws/socket?x=1 xff=127.0.0.1 rid=yes');
      ws.send('ping 1');
      assert.equal(await next(), 'echo:ping 1');
    } finally {
      ws.close();
    }
  });

  it('closes an idle WebSocket after the idle timeout', async () => {
    const { ws, next } = await open(`ws://127.0.0.1:${p.port}/ws/`);
    await next();
    const closedAt = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())));
    const t0 = Date.now();
    const t = await closedAt;
    assert.ok(t - t0 >= 200, `closed after ${t - t0} ms`);
  });

  it('answers 502 and destroys both ends when the backend answers the upgrade with 200', async () => {
    const before = wrongSockets.length;
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.port}/wrong/`), 502);
    // A raw client sees the 502 and then the proxy closing the connection (rawRequest resolves on close).
    const raw = await rawRequest(
      p.port,
      'GET /wrong/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(raw, /^HTTP\/1\.1 502 /);
    assert.ok(!raw.includes('hello'), 'the backend body is not relayed');
    assert.ok(!raw.includes(String(wrongPort)));
    await waitFor('backend to see both upgrades', () => wrongSockets.length >= before + 2, 2000, 10);
    for (const s of wrongSockets.slice(before)) await waitFor('the proxy to close its backend socket', () => wrongEnded.has(s), 2000, 10);
  });

  it('answers 502 for a refused backend and 404 for an unknown tool', async () => {
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.port}/gone/`), 502);
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.port}/nope/`), 404);
  });

  it('access-logs each WebSocket once it has closed, with its status and outcome', async () => {
    const access = () => lines.filter((l) => l.event === 'access');
    const from = access().length;
    const { ws, next } = await open(`ws://127.0.0.1:${p.port}/ws/logged`);
    await next();
    ws.close();
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.port}/gone/`), 502);
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.port}/nope/`), 404);
    await waitFor('three access lines', () => access().length >= from + 3, 2000, 10);
    const got = access()
      .slice(from)
      .map((l) => `${String(l.path)} ${String(l.status)} ${String(l.outcome)}`)
      .sort();
    assert.deepEqual(got, ['/gone/ 502 bad_gateway', '/nope/ 404 no_such_tool', '/ws/logged 101 ok']);
  });
});
