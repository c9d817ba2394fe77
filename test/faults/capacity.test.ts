import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { backend } from '../proxy/helpers';
import { get } from '../support/traffic';
import { ProxyChild } from './proxy-child';
import { waitFor } from '../support/wait';
import { startBackend, listen, closeServer, type Backend } from '../support/backend';

const KEEP_ALIVE_CONNECTIONS = 10_000;
const WEBSOCKETS = 1000;
const BATCH = 500;

/** The soft open-file limit of this (the client) process. */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? 0);
}

/** One request on a new connection, leaving it open (keep-alive) once the whole answer is in. */
function idleKeepAlive(port: number, i: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connection ${i}: no answer`));
    }, 20_000);
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('connect', () => s.write(`GET /ok/${i} HTTP/1.1\r\nHost: x\r\n\r\n`));
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? -1);
      if (buf.length < end + 4 + length) return;
      clearTimeout(timer);
      s.off('data', onData);
      if (!buf.startsWith('HTTP/1.1 200 ') || /connection: close/i.test(buf.slice(0, end))) reject(new Error(`connection ${i}: ${buf.slice(0, 80)}`));
      else resolve(s);
    };
    s.on('data', onData);
  });
}

function openWebSocket(port: number, i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/${i}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(d.toString()));
    ws.send(text);
  });
}

async function inBatches<T>(n: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += BATCH) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => open(i + k)))));
  }
  return out;
}

const KiB = 1024;
const round = (x: number) => Math.round(x * 10) / 10;

describe(`capacity of one proxy process: ${KEEP_ALIVE_CONNECTIONS} idle keep-alive connections, ${WEBSOCKETS} WebSockets`, function () {
  this.timeout(120_000);
  let proxy: ProxyChild | null = null;
  let ok: Backend;
  let wsPort = 0;
  let wsServer: http.Server;
  let wss: WebSocketServer;

  before(async () => {
    const limit = openFileLimit();
    assert.ok(limit >= KEEP_ALIVE_CONNECTIONS + 2000, `the test opens ${KEEP_ALIVE_CONNECTIONS} sockets itself: raise the open-file limit (ulimit -n, now ${limit})`);
    ok = await startBackend((req, res) => res.end(`ok ${req.url}`));
    wsServer = http.createServer();
    wss = new WebSocketServer({ server: wsServer });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo:${d.toString()}`)));
    wsPort = await listen(wsServer);
  });
  // A proxy process of its own per test, so one test's memory does not blur the next one's figure.
  beforeEach(async () => {
    // Idle connections must stay idle for the test's length; the proxy process raises its own file limit.
    proxy = await ProxyChild.start({ keepAliveTimeoutMs: 120_000, requestTimeoutMs: 120_000 });
    await proxy.routes([backend('ok', 'o1', ok.url), backend('ws', 'w1', `http://127.0.0.1:${wsPort}`)]);
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = null;
  });
  const current = (): ProxyChild => {
    assert.ok(proxy);
    return proxy;
  };
  after(async () => {
    for (const c of wss?.clients ?? []) c.terminate();
    wss?.close();
    if (wsServer) await closeServer(wsServer);
    await ok?.close();
  });

  it(`holds ${KEEP_ALIVE_CONNECTIONS} idle keep-alive client connections and still serves; reports memory per connection`, async () => {
    const proxy = current();
    assert.equal((await get(proxy.port, '/ok/warm')).status, 200);
    const base = await proxy.stats(true);
    const t0 = Date.now();
    const sockets = await inBatches(KEEP_ALIVE_CONNECTIONS, (i) => idleKeepAlive(proxy.port, i));
    const openMs = Date.now() - t0;
    try {
      const held = await proxy.stats(true);
      assert.ok(held.clientConnections >= KEEP_ALIVE_CONNECTIONS, `the proxy holds ${held.clientConnections} client connections`);
      assert.ok(sockets.every((s) => !s.destroyed), 'none was closed by the proxy');
      assert.equal((await get(proxy.port, '/ok/more')).status, 200, 'a new client is still served');
      const figures = {
        connections: KEEP_ALIVE_CONNECTIONS,
        openedInMs: openMs,
        proxyFds: held.fds,
        rssPerConnectionKiB: round((held.rss - base.rss) / KEEP_ALIVE_CONNECTIONS / KiB),
        heapPerConnectionKiB: round((held.heapUsed - base.heapUsed) / KEEP_ALIVE_CONNECTIONS / KiB),
        rssTotalMiB: round(held.rss / KiB / KiB),
      };
      console.log(`      figures: ${JSON.stringify(figures)}`);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await waitFor('the proxy to let go of them', async () => (await proxy.stats()).clientConnections === 0, 20_000, 100);
    assert.ok(proxy.alive);
  });

  it(`holds ${WEBSOCKETS} concurrent WebSockets, each still relaying both ways; reports memory per WebSocket`, async () => {
    const proxy = current();
    assert.equal((await get(proxy.port, '/ok/warm')).status, 200);
    const base = await proxy.stats(true);
    const sockets = await inBatches(WEBSOCKETS, (i) => openWebSocket(proxy.port, i));
    try {
      await waitFor('the backend to hold them all', async () => wss.clients.size === WEBSOCKETS, 10_000, 50);
      const held = await proxy.stats(true);
      const replies = await inBatches(WEBSOCKETS, (i) => echo(sockets[i], `m${i}`));
      assert.deepEqual(replies.filter((r, i) => r !== `echo:m${i}`), [], 'every WebSocket relays both ways while all are open');
      const figures = {
        websockets: WEBSOCKETS,
        proxyFds: held.fds,
        rssPerWebSocketKiB: round((held.rss - base.rss) / WEBSOCKETS / KiB),
        heapPerWebSocketKiB: round((held.heapUsed - base.heapUsed) / WEBSOCKETS / KiB),
      };
      console.log(`      figures: ${JSON.stringify(figures)}`);
    } finally {
      for (const ws of sockets) ws.terminate();
    }
    await waitFor('the proxy to let go of them', async () => (await proxy.stats()).clientConnections === 0, 20_000, 100);
    assert.ok(proxy.alive);
  });
});
