import assert from 'node:assert/strict';
import http from 'node:http';
import type { PolicyRecord } from '../../src/registry/types';
import { StaticRoutes, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend, type Backend } from '../support/backend';
import { metricValue } from '../support/metrics';
import { waitFor } from '../support/wait';

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
  const held: http.ServerResponse[] = [];
  let p: TestProxy;
  const routes = new StaticRoutes();

  function withPolicies(policies: PolicyRecord[]): void {
    routes.set(
      tableOf(
        [backend('web', 'w1', echo.url), backend('api', 'a1', echo.url), backend('slow', 's1', slow.url), backend('hold', 'h1', slow.url)],
        [],
        policies,
      ),
    );
  }
  const refusals = async (reason: string) => metricValue(await p.metrics.registry.metrics(), 'switchboard_policy_refusals_total', { reason });

  before(async () => {
    echo = await startBackend((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/login-redirect') return void res.writeHead(302, { location: '/login' }).end();
        if (req.url === '/away') return void res.writeHead(302, { location: 'https://elsewhere.test/x' }).end();
        res.end(JSON.stringify({ url: req.url, prefix: req.headers['x-forwarded-prefix'] ?? null, bytes: Buffer.concat(chunks).length }));
      });
    });
    slow = await startBackend((req, res) => {
      if (req.url?.endsWith('/hold')) return void held.push(res);
      setTimeout(() => res.end('late'), 600);
    });
    withPolicies([]);
    p = await startProxy(routes, testConfig({ responseTimeoutMs: 300, bufferBodyBytes: 4096 }, { domain: 'example.test' }));
  });
  after(async () => {
    for (const r of held) r.end();
    await p.close();
    await Promise.all([echo.close(), slow.close()]);
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

  it('maxBodyBytes: a chunked body past it that streams is cut and counted', async () => {
    withPolicies([{ kind: 'tool', tool: 'web', maxBodyBytes: 10_000, updatedAt: 1 }]);
    const before = await refusals('body_too_large');
    const status = await chunkedUpload(p.port, '/web/up', 50_000);
    assert.notEqual(status, 200);
    await waitFor('the refusal counted', async () => (await refusals('body_too_large')) > before);
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
