import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import type { PolicyRecord } from '../../src/registry/types';
import { StaticRoutes, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { closeServer, listen, startBackend, type Backend } from '../support/backend';
import { metricValue } from '../support/metrics';
import { sleep, waitFor } from '../support/wait';

const UA = { 'user-agent': 'test-client/1.0' };

/** A chunked upload of `bytes` bytes; resolves with the status, or 0 when the connection was cut. */
function chunkedUpload(port: number, path: string, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...UA, 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    for (let sent = 0; sent < bytes; sent += 1000) req.write(Buffer.alloc(Math.min(1000, bytes - sent), 'x'));
    req.end();
  });
}

describe("a tool's policy at the proxy", () => {
  let echo: Backend;
  let slow: Backend;
  let sockets: WebSocketServer;
  let socketsPort: number;
  const held: http.ServerResponse[] = [];
  /** The lengths of the bodies that reached the backend whole at /web/streamed. */
  const bodiesEnded: number[] = [];
  let p: TestProxy;
  const routes = new StaticRoutes();

  function withPolicies(policies: PolicyRecord[]): void {
    routes.set(
      tableOf(
        [backend('chat', 'c1', `http://127.0.0.1:${socketsPort}`), backend('web', 'w1', echo.url), backend('api', 'a1', echo.url), backend('slow', 's1', slow.url), backend('hold', 'h1', slow.url)],
        [],
        policies,
      ),
    );
  }
  const refusals = async (reason: string) => metricValue(await p.metrics.registry.metrics(), 'switchboard_policy_refusals_total', { reason });

  before(async () => {
    echo = await startBackend((req, res) => {
      // An answer that starts before the body is read: a body past the bound then cuts the exchange.
      if (req.url === '/web/answers-early') return void res.writeHead(200, { 'content-type': 'text/plain' }).write('started');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/web/streamed') bodiesEnded.push(Buffer.concat(chunks).length);
        if (req.url === '/login-redirect') return void res.writeHead(302, { location: '/login' }).end();
        if (req.url === '/away') return void res.writeHead(302, { location: 'https://elsewhere.test/x' }).end();
        res.end(JSON.stringify({ url: req.url, prefix: req.headers['x-forwarded-prefix'] ?? null, bytes: Buffer.concat(chunks).length }));
      });
    });
    slow = await startBackend((req, res) => {
      if (req.url?.endsWith('/hold')) return void held.push(res);
      setTimeout(() => res.end('late'), 600);
    });
    // A WebSocket backend that also answers plain requests (the 'chat' tool).
    const chat = http.createServer((_req, res) => res.end('chat'));
    sockets = new WebSocketServer({ server: chat });
    sockets.on('connection', (ws) => ws.send('hello'));
    socketsPort = await listen(chat);
    withPolicies([]);
    p = await startProxy(routes, testConfig({ responseTimeoutMs: 300, bufferBodyBytes: 4096 }, { domain: 'example.test' }));
  });
  after(async () => {
    for (const r of held) r.end();
    await p.close();
    for (const ws of sockets.clients) ws.terminate();
    await new Promise<void>((resolve) => sockets.close(() => resolve()));
    await Promise.all([echo.close(), slow.close(), closeServer(sockets.options.server as http.Server)]);
  });

  it('maxConcurrent: past it 503 `over_concurrency` with Retry-After, a place again once a response ends', async () => {
    // A long response timeout: the held request must outlast proxy.responseTimeoutMs here.
    withPolicies([{ kind: 'tool', tool: 'hold', maxConcurrent: 1, responseTimeoutSeconds: 60, updatedAt: 1 }]);
    const first = request(p.port, '/hold/hold', { headers: UA });
    await waitFor('the first request at the backend', () => held.length === 1);
    const before = await refusals('over_concurrency');
    const second = await request(p.port, '/hold/x', { headers: { ...UA, accept: 'application/json' } });
    assert.equal(second.status, 503);
    assert.equal(JSON.parse(second.body).error.code, 'over_concurrency');
    assert.equal(second.headers['retry-after'], '1');
    assert.equal((await refusals('over_concurrency')) - before, 1);
    held.shift()!.end('done');
    assert.equal((await first).status, 200);
    const third = request(p.port, '/hold/hold', { headers: UA });
    await waitFor('the third request at the backend: the place was given back', () => held.length === 1);
    held.shift()!.end('done');
    assert.equal((await third).status, 200);
  });

  it('maxConcurrent: an open WebSocket holds a place until it closes; a handshake past it gets 503 `over_concurrency`', async () => {
    withPolicies([{ kind: 'tool', tool: 'chat', maxConcurrent: 1, updatedAt: 1 }]);
    const url = `ws://127.0.0.1:${p.port}/chat/socket`;
    const first = new WebSocket(url, { headers: UA });
    await new Promise<void>((resolve, reject) => first.once('message', () => resolve()).once('error', reject));
    const before = await refusals('over_concurrency');
    const refused = await new Promise<number>((resolve) => {
      const second = new WebSocket(url, { headers: UA });
      second.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      second.once('open', () => resolve(101));
      second.once('error', () => resolve(0));
    });
    assert.equal(refused, 503);
    assert.equal((await request(p.port, '/chat/', { headers: UA })).status, 503, 'a plain request finds no place either');
    assert.equal((await refusals('over_concurrency')) - before, 2);
    first.close();
    await waitFor('the place given back once the socket closed', async () => (await request(p.port, '/chat/', { headers: UA })).status === 200);
  });

  it('rateLimit: a client past its burst gets 429 `rate_limited` with Retry-After; another tool is not limited', async () => {
    withPolicies([{ kind: 'tool', tool: 'web', rateLimit: { perClientPerSecond: 0.01, burst: 2 }, updatedAt: 1 }]);
    assert.equal((await request(p.port, '/web/', { headers: UA })).status, 200);
    assert.equal((await request(p.port, '/web/', { headers: UA })).status, 200);
    const limited = await request(p.port, '/web/', { headers: { ...UA, accept: 'application/json' } });
    assert.equal(limited.status, 429);
    assert.equal(JSON.parse(limited.body).error.code, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal((await request(p.port, '/api/', { headers: UA })).status, 200);
  });

  it('maxBodyBytes: 413 `body_too_large` for a declared length and for a chunked body read whole; a body within it passes', async () => {
    withPolicies([{ kind: 'tool', tool: 'web', maxBodyBytes: 1500, updatedAt: 1 }]);
    const declared = await request(p.port, '/web/up', { method: 'POST', headers: { ...UA, accept: 'application/json' }, body: Buffer.alloc(2000) });
    assert.equal(declared.status, 413);
    assert.equal(JSON.parse(declared.body).error.code, 'body_too_large');
    assert.equal(declared.headers.connection, 'close', 'a body refused unread is not read to be dropped');
    assert.equal(await chunkedUpload(p.port, '/web/up', 3000), 413);
    const fits = await request(p.port, '/web/up', { method: 'POST', headers: UA, body: Buffer.alloc(1500) });
    assert.equal(fits.status, 200);
    assert.equal(JSON.parse(fits.body).bytes, 1500);
  });

  it('maxBodyBytes: a chunked body past it that streams gets 413 `body_too_large`, counted; the backend never gets it whole', async () => {
    withPolicies([{ kind: 'tool', tool: 'web', maxBodyBytes: 10_000, updatedAt: 1 }]);
    const before = await refusals('body_too_large');
    const whole = bodiesEnded.length;
    // Past bufferBodyBytes (4 KiB) the body streams: its length is known only as it goes.
    assert.equal(await chunkedUpload(p.port, '/web/streamed', 50_000), 413);
    assert.equal((await refusals('body_too_large')) - before, 1);
    assert.deepEqual(bodiesEnded.slice(whole), [], 'no request of the upload ended whole at the backend');
    const fits = await chunkedUpload(p.port, '/web/streamed', 10_000);
    assert.equal(fits, 200, 'a streamed body within the bound passes');
    assert.deepEqual(bodiesEnded.slice(whole), [10_000]);
  });

  it('maxBodyBytes: a streamed body that passes it after the backend has answered is cut, and counted', async () => {
    withPolicies([{ kind: 'tool', tool: 'web', maxBodyBytes: 10_000, updatedAt: 1 }]);
    const before = await refusals('body_too_large');
    const status = await chunkedUpload(p.port, '/web/answers-early', 50_000);
    assert.notEqual(status, 200, 'the answer is cut short, not ended as if whole');
    await waitFor('the refusal counted', async () => (await refusals('body_too_large')) > before);
    // Chunks the exchange still held when it was cut are not counted again.
    await sleep(100);
    assert.equal((await refusals('body_too_large')) - before, 1);
  });

  it('responseTimeoutSeconds: the tool waits longer than proxy.responseTimeoutMs, the others do not', async () => {
    withPolicies([{ kind: 'tool', tool: 'slow', responseTimeoutSeconds: 5, updatedAt: 1 }]);
    const patient = await request(p.port, '/slow/x', { headers: UA });
    assert.equal(patient.status, 200);
    assert.equal(patient.body, 'late');
    withPolicies([]);
    assert.equal((await request(p.port, '/slow/x', { headers: UA })).status, 504);
  });

  it('stripPrefix: a path-routed request reaches the backend without /<tool>, with X-Forwarded-Prefix; Location gets it back', async () => {
    withPolicies([]);
    assert.deepEqual(JSON.parse((await request(p.port, '/web/a/b?c=1', { headers: UA })).body), { url: '/web/a/b?c=1', prefix: '/web', bytes: 0 });
    withPolicies([{ kind: 'tool', tool: 'web', stripPrefix: true, updatedAt: 1 }]);
    assert.deepEqual(JSON.parse((await request(p.port, '/web/a/b?c=1', { headers: UA })).body), { url: '/a/b?c=1', prefix: '/web', bytes: 0 });
    assert.deepEqual(JSON.parse((await request(p.port, '/web/', { headers: UA })).body), { url: '/', prefix: '/web', bytes: 0 });
    assert.equal((await request(p.port, '/web/login-redirect', { headers: UA })).headers.location, '/web/login');
    assert.equal((await request(p.port, '/web/away', { headers: UA })).headers.location, 'https://elsewhere.test/x');
    // Routed by its Host, a request has no prefix to strip.
    const byHost = JSON.parse((await request(p.port, '/a/b', { headers: { ...UA, host: 'web.example.test' } })).body);
    assert.deepEqual(byHost, { url: '/a/b', prefix: null, bytes: 0 });
    // The bare /tool is still redirected to /tool/, whatever the policy.
    const bare = await request(p.port, '/web', { headers: UA });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/web/');
  });
});
