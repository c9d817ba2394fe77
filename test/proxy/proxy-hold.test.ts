import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import type { Metrics } from '../../src/metrics';
import { StaticRoutes, assignment, backend, request, startProxy, tableOf, testConfig, type Reply, type TestProxy } from './helpers';
import { waitFor, sleep } from '../support/wait';
import { startBackend, deadPort, listen, closeServer, type Backend } from '../support/backend';
import { capturingLogger } from '../support/logs';

/** A backend that answers with the method and the body it received. */
function echo(): Promise<Backend> {
  return startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString('utf8') }));
    });
  });
}

async function held(m: Metrics): Promise<number> {
  return (await m.proxyHeldRequests.get()).values[0]?.value ?? 0;
}

/** switchboard_proxy_holds_total by outcome. */
async function holds(m: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.proxyHolds.get()).values) out[String(v.labels.outcome)] = v.value;
  return out;
}

/** Polls an async gauge reading until it equals `want` (bounded by waitFor's deadline). */
async function heldIs(m: Metrics, want: number): Promise<void> {
  let now = -1;
  const end = Date.now() + 5000;
  while ((now = await held(m)) !== want) {
    if (Date.now() > end) throw new Error(`switchboard_proxy_held_requests is ${now}, waited for ${want}`);
    await sleep(10);
  }
}

const GAMMA_PORT = 29999;

describe('proxy hold: a tool with an assignment and no live backend', () => {
  let p: TestProxy | null = null;
  let b: Backend | null = null;
  let routes: StaticRoutes;
  let lines: Array<Record<string, unknown>>;

  async function start(proxy: Record<string, unknown>): Promise<TestProxy> {
    routes = new StaticRoutes(tableOf([], [assignment('gamma', GAMMA_PORT)]));
    const captured = capturingLogger('info');
    lines = captured.lines;
    p = await startProxy(routes, testConfig({ accessLog: true, ...proxy }), { logger: captured.logger });
    return p;
  }

  function access(): Array<Record<string, unknown>> {
    return lines.filter((l) => l.event === 'access');
  }

  afterEach(async () => {
    await p?.close();
    await b?.close();
    p = null;
    b = null;
  });

  it('holds the request and forwards it, body whole, once a backend registers (200; held in the access log and metrics)', async () => {
    const px = await start({ holdMs: 20_000 });
    b = await echo();
    const reply = request(px.port, '/gamma/x', { method: 'POST', body: 'the whole body', headers: { 'content-type': 'text/plain' } });
    await heldIs(px.metrics, 1);
    assert.equal(routes.listenerCount('table'), 1, 'one listener on the table swaps for the held requests');
    routes.set(tableOf([backend('gamma', 'g1', b.url)], [assignment('gamma', GAMMA_PORT)]));
    const r = await reply;
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { method: 'POST', body: 'the whole body' });
    await heldIs(px.metrics, 0);
    assert.equal(routes.listenerCount('table'), 0, 'nothing listens once nothing is held');
    assert.equal((await holds(px.metrics)).forwarded, 1);
    const hist = (await px.metrics.proxyHoldSeconds.get()).values.find((v) => v.metricName === 'switchboard_proxy_hold_seconds_count');
    assert.equal(hist?.value, 1);
    await waitFor('the access line', () => access().length === 1, 2000, 10);
    const line = access()[0];
    assert.equal(line.status, 200);
    assert.equal(line.outcome, 'ok');
    assert.equal(line.hold, 'forwarded');
    assert.equal(typeof line.held, 'number');
    console.log(`      held ${String(line.held)} ms before the backend came`);
  });

  it('answers the 503 page once holdMs passes without a backend', async () => {
    const px = await start({ holdMs: 300 });
    const r = await request(px.port, '/gamma/x', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).error.code, 'not_running');
    assert.ok(r.headers['retry-after']);
    assert.equal((await holds(px.metrics)).timeout, 1);
    await heldIs(px.metrics, 0);
    await waitFor('the access line', () => access().length === 1, 2000, 10);
    assert.equal(access()[0].hold, 'timeout');
    assert.equal(access()[0].outcome, 'not_running');
  });

  it('a client that leaves releases its held request: gauge back to 0, no listener left, 499 in the access log', async () => {
    const px = await start({ holdMs: 20_000 });
    const req = http.request({ host: '127.0.0.1', port: px.port, path: '/gamma/x', agent: false });
    req.on('error', () => undefined);
    req.end();
    await heldIs(px.metrics, 1);
    req.destroy();
    await heldIs(px.metrics, 0);
    assert.equal((await holds(px.metrics)).client_gone, 1);
    assert.equal(routes.listenerCount('table'), 0);
    await waitFor('the access line', () => access().length === 1, 2000, 10);
    assert.equal(access()[0].status, 499);
    assert.equal(access()[0].hold, 'client_gone');
    // A backend coming later finds nothing held for it.
    b = await echo();
    routes.set(tableOf([backend('gamma', 'g1', b.url)], [assignment('gamma', GAMMA_PORT)]));
    assert.equal(b.requests, 0);
  });

  it('past holdMaxPerTool held requests the next one gets the 503 page at once (overflow); the held ones still go on', async () => {
    const px = await start({ holdMs: 20_000, holdMaxPerTool: 2 });
    b = await echo();
    const first: Array<Promise<Reply>> = [request(px.port, '/gamma/1'), request(px.port, '/gamma/2')];
    await heldIs(px.metrics, 2);
    const third = await request(px.port, '/gamma/3');
    assert.equal(third.status, 503);
    assert.equal(await held(px.metrics), 2, 'answered while the two others were still held');
    assert.equal((await holds(px.metrics)).overflow, 1);
    routes.set(tableOf([backend('gamma', 'g1', b.url)], [assignment('gamma', GAMMA_PORT)]));
    assert.deepEqual((await Promise.all(first)).map((r) => r.status), [200, 200]);
  });

  it('holdMs 0: the 503 page at once, nothing held', async () => {
    const px = await start({ holdMs: 0 });
    const r = await request(px.port, '/gamma/x');
    assert.equal(r.status, 503);
    assert.deepEqual(await holds(px.metrics), { forwarded: 0, timeout: 0, client_gone: 0, overflow: 0 });
    assert.equal(routes.listenerCount('table'), 0);
  });

  it('holds nothing for an unknown tool (404) or a tool whose backends refuse (502)', async () => {
    const px = await start({ holdMs: 20_000 });
    const dead = await deadPort();
    routes.set(tableOf([backend('delta', 'd1', `http://127.0.0.1:${dead}`)], [assignment('gamma', GAMMA_PORT), assignment('delta', dead)]));
    assert.equal((await request(px.port, '/nope/')).status, 404);
    assert.equal((await request(px.port, '/delta/')).status, 502);
    assert.deepEqual(await holds(px.metrics), { forwarded: 0, timeout: 0, client_gone: 0, overflow: 0 });
  });

  it('holds a WebSocket upgrade the same way and relays it once a backend registers', async () => {
    const px = await start({ holdMs: 20_000 });
    const wsServer = http.createServer();
    const wss = new WebSocketServer({ server: wsServer });
    wss.on('connection', (ws) => ws.send('hello'));
    const wsPort = await listen(wsServer);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${px.port}/gamma/socket`);
      const first = new Promise<string>((resolve, reject) => {
        ws.once('message', (d) => resolve(d.toString()));
        ws.once('error', reject);
      });
      await heldIs(px.metrics, 1);
      routes.set(tableOf([backend('gamma', 'g1', `http://127.0.0.1:${wsPort}`)], [assignment('gamma', GAMMA_PORT)]));
      assert.equal(await first, 'hello');
      ws.terminate();
      assert.equal((await holds(px.metrics)).forwarded, 1);
    } finally {
      wss.close();
      await closeServer(wsServer);
    }
  });
});
