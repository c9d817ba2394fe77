import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { StaticRoutes, backend, rawRequest, startProxy, startRawBackend, tableOf, testConfig, type TestProxy } from './helpers';
import { acceptFor } from '../../src/proxy/websocket-handshake';
import { waitFor } from '../support/wait';
import { deadPort, listen, closeServer } from '../support/backend';
import { capturingLogger } from '../support/logs';
import { metricValue } from '../support/metrics';

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
    assert.deepEqual(got, ['/gone/ 502 backend_refused', '/nope/ 404 no_such_tool', '/ws/logged 101 ok']);
  });
});

/** A handshake as a WebSocket client sends it, with `key` as its Sec-WebSocket-Key. */
function handshake(path: string, key = 'dGhlIHNhbXBsZSBub25jZQ=='): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
}

describe('proxy WebSockets: the backend must complete the handshake', () => {
  /** What each raw backend received, after its request head: bytes a tunnel would have carried. */
  const tunnelled = new Map<string, string>();
  /** Upgrade requests each raw backend received. */
  const upgrades = new Map<string, number>();
  const backends: Array<{ close(): Promise<void> }> = [];
  let p: TestProxy;
  let lines: Array<Record<string, unknown>> = [];

  /** A backend that answers every upgrade with `answer(key)` and then keeps reading. */
  async function rawWebSocketBackend(name: string, answer: (key: string) => string): Promise<string> {
    tunnelled.set(name, '');
    upgrades.set(name, 0);
    const b = await startRawBackend((s) => {
      let head = '';
      let answered = false;
      s.on('data', (c: Buffer) => {
        if (answered) return void tunnelled.set(name, tunnelled.get(name)! + c.toString('latin1'));
        head += c.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        answered = true;
        upgrades.set(name, upgrades.get(name)! + 1);
        const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
        s.write(answer(key));
        tunnelled.set(name, tunnelled.get(name)! + head.slice(end + 4));
      });
    });
    backends.push(b);
    return b.url;
  }

  before(async () => {
    const switching = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n';
    const routes = new StaticRoutes(
      tableOf([
        backend('bare', 'b1', await rawWebSocketBackend('bare', () => `${switching}Upgrade: websocket\r\n\r\n`)),
        backend('wrongkey', 'k1', await rawWebSocketBackend('wrongkey', () => `${switching}Upgrade: websocket\r\nSec-WebSocket-Accept: ${acceptFor('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n`)),
        backend('h2c', 'h1', await rawWebSocketBackend('h2c', (key) => `${switching}Upgrade: h2c\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`)),
        backend('good', 'g1', await rawWebSocketBackend('good', (key) => `${switching}Upgrade: websocket\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`)),
      ]),
    );
    const captured = capturingLogger('info');
    lines = captured.lines;
    p = await startProxy(routes, testConfig({ accessLog: true }), { logger: captured.logger });
  });
  after(async () => {
    await p.close();
    for (const b of backends) await b.close();
  });

  it('answers 502 to a bare 101 (no Sec-WebSocket-Accept) and carries nothing more to the backend: no raw tunnel', async () => {
    const errors = async () => metricValue(await p.metrics.registry.metrics(), 'switchboard_proxy_errors_total', { kind: 'bad_gateway' });
    const errorsBefore = await errors();
    const logged = lines.filter((l) => l.event === 'access').length;
    // Two requests follow the handshake at once, as through a tunnel, each with a forged X-Forwarded-For.
    const smuggled = 'GET /bare/admin HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\nX-Real-IP: 10.9.9.9\r\n\r\n';
    const raw = await rawRequest(p.port, handshake('/bare/') + smuggled + smuggled);
    assert.match(raw, /^HTTP\/1\.1 502 /);
    assert.ok(!raw.includes('101'), raw);
    await waitFor('the backend to see the upgrade', () => upgrades.get('bare') === 1, 2000, 10);
    assert.equal(tunnelled.get('bare'), '', 'nothing after the handshake reached the backend');
    await waitFor('the access line', () => lines.filter((l) => l.event === 'access').length > logged, 2000, 10);
    const line = lines.filter((l) => l.event === 'access').slice(logged);
    assert.deepEqual(
      line.map((l) => [l.path, l.status, l.outcome]),
      [['/bare/', 502, 'bad_gateway']],
    );
    assert.equal((await errors()) - errorsBefore, 1);
  });

  it('answers 502 to a 101 whose Sec-WebSocket-Accept is not the one for the key, or whose Upgrade is not websocket', async () => {
    for (const tool of ['wrongkey', 'h2c']) {
      const raw = await rawRequest(p.port, handshake(`/${tool}/`) + 'GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 502 /, tool);
      await waitFor(`${tool} to see the upgrade`, () => upgrades.get(tool) === 1, 2000, 10);
      assert.equal(tunnelled.get(tool), '', `${tool}: nothing after the handshake reached the backend`);
    }
  });

  it('relays a 101 that completes the handshake, then both ways', async () => {
    const s = net.connect(p.port, '127.0.0.1');
    try {
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      s.write(handshake('/good/'));
      await waitFor('the 101', () => got.includes('\r\n\r\n'), 2000, 10);
      assert.match(got, /^HTTP\/1\.1 101 /);
      assert.ok(got.toLowerCase().includes(`sec-websocket-accept: ${acceptFor('dGhlIHNhbXBsZSBub25jZQ==').toLowerCase()}`), got);
      s.write('frames');
      await waitFor('the bytes at the backend', () => tunnelled.get('good') === 'frames', 2000, 10);
    } finally {
      s.destroy();
    }
  });

  it('answers 400 to a handshake whose Sec-WebSocket-Key is malformed, and never contacts the backend', async () => {
    for (const key of ['abc', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ==AA', '!GhlIHNhbXBsZSBub25jZQ==']) {
      const raw = await rawRequest(p.port, handshake('/good/', key));
      assert.match(raw, /^HTTP\/1\.1 400 /, key);
    }
    const noKey = handshake('/good/').replace(/Sec-WebSocket-Key: \S+\r\n/, '');
    assert.match(await rawRequest(p.port, noKey), /^HTTP\/1\.1 400 /);
    assert.equal(upgrades.get('good'), 1, 'only the handshake of the test before reached it');
  });
});
