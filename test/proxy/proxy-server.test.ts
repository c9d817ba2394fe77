import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import net from 'node:net';
import { waitFor } from '../support/wait';
import { StaticRoutes, backend, rawRequest, request, startProxy, tableOf, testConfig } from './helpers';
import { type Backend, startBackend } from '../support/backend';
import { capturingLogger } from '../support/logs';

describe('proxy server', () => {
  let slow: Backend;
  before(async () => {
    slow = await startBackend((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.end(`done after ${ms}`), ms);
    });
  });
  after(() => slow.close());

  const routes = () => new StaticRoutes(tableOf([backend('slow', 's1', slow.url)]));

  it('close() lets an in-flight request finish, then stops accepting', async () => {
    const p = await startProxy(routes(), testConfig({ drainTimeoutMs: 5000 }));
    // Keep-alive, so that a `connection: close` below is the proxy's doing, not the client's.
    const agent = new http.Agent({ keepAlive: true });
    const reached = slow.requests;
    const inFlight = request(p.port, '/slow/?ms=300', { agent });
    await waitFor('the request to reach the backend', async () => slow.requests > reached, 5000, 5);
    const t0 = Date.now();
    const closed = p.close();
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'done after 300');
    // Its head was written after the drain began: it tells the client not to reuse the connection.
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.headers['x-request-id']);
    await closed;
    agent.destroy();
    assert.ok(Date.now() - t0 < 4000, 'close did not wait for the drain timeout');
    await assert.rejects(request(p.port, '/slow/'), /ECONNREFUSED/);
  });

  it('forwards plain requests with undici whatever proxy.engine names (its "http-proxy" is retired)', async () => {
    // undici announces each request it creates on a diagnostics channel; Node's client does not.
    const viaUndici: string[] = [];
    const onCreate = (m: unknown) => viaUndici.push((m as { request: { path: string } }).request.path);
    diagnostics.subscribe('undici:request:create', onCreate);
    const b = await startBackend((_req, res) => res.end('ok'));
    try {
      for (const engine of ['http-proxy', 'undici']) {
        const p = await startProxy(new StaticRoutes(tableOf([backend('e', 'e1', b.url)])), testConfig({ engine }));
        assert.equal(p.proxy.engine, 'undici');
        assert.equal((await request(p.port, `/e/${engine}`)).body, 'ok');
        await p.close();
      }
    } finally {
      diagnostics.unsubscribe('undici:request:create', onCreate);
      await b.close();
    }
    assert.deepEqual(viaUndici, ['/e/http-proxy', '/e/undici']);
  });

  it("answers with the request's own id, over one the backend set", async () => {
    const echo = await startBackend((_req, res) => {
      res.setHeader('x-request-id', 'from-the-backend');
      res.end('ok');
    });
    const p = await startProxy(new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)])), testConfig());
    const agent = new http.Agent({ keepAlive: true });
    try {
      const given = await request(p.port, '/echo/', { headers: { 'x-request-id': 'client-id-1' }, agent });
      assert.equal(given.headers['x-request-id'], 'client-id-1');
      const generated = await request(p.port, '/echo/', { agent });
      assert.match(String(generated.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.notEqual(generated.headers.connection, 'close');
    } finally {
      agent.destroy();
      await p.close();
      await echo.close();
    }
  });

  it('close() cuts requests still running after drainTimeoutMs', async () => {
    const p = await startProxy(routes(), testConfig({ drainTimeoutMs: 200, responseTimeoutMs: 10000 }));
    const reached = slow.requests;
    const inFlight = request(p.port, '/slow/?ms=5000').then(
      (r) => r.status,
      () => 'cut',
    );
    await waitFor('the request to reach the backend', async () => slow.requests > reached, 5000, 5);
    const t0 = Date.now();
    await p.close();
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(await inFlight, 'cut');
  });

  it('cuts off a slowloris client that sends its headers byte by byte (headersTimeout)', async () => {
    const p = await startProxy(routes(), testConfig({ headersTimeoutMs: 300, requestTimeoutMs: 1000 }));
    try {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => undefined);
      const received: Buffer[] = [];
      s.on('data', (c) => received.push(c));
      const closed = new Promise<number>((resolve) => s.on('close', () => resolve(Date.now())));
      const t0 = Date.now();
      const text = 'GET /slow/ HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(100);
      let i = 0;
      const drip = setInterval(() => {
        if (s.destroyed || i >= text.length) return clearInterval(drip);
        s.write(text[i++]);
      }, 50);
      const at = await closed;
      clearInterval(drip);
      assert.ok(at - t0 < 3000, `cut after ${at - t0} ms`);
      assert.ok(i < text.length, 'cut before all headers were sent');
      assert.match(Buffer.concat(received).toString(), /^(HTTP\/1\.1 408 |$)/);
    } finally {
      await p.close();
    }
  });

  it('answers 400 to garbage and 431 to oversized headers, and keeps serving', async () => {
    const p = await startProxy(routes());
    try {
      assert.match(await rawRequest(p.port, 'THIS IS NOT HTTP\r\n\r\n'), /^HTTP\/1\.1 400 /);
      assert.match(await rawRequest(p.port, `GET /slow/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
      assert.equal((await request(p.port, '/slow/')).status, 200);
    } finally {
      await p.close();
    }
  });

  it('an internal error is answered 502, logged, and still access-logged once', async () => {
    const { logger, lines } = capturingLogger('info');
    // A route source that throws: handle() rejects, which only a bug in the proxy can make it do.
    class BrokenRoutes extends StaticRoutes {
      override current(): never {
        throw new Error('broken table');
      }
    }
    const p = await startProxy(new BrokenRoutes(), testConfig({ accessLog: true }), { logger });
    try {
      const r = await request(p.port, '/any/', { headers: { accept: 'application/json' } });
      assert.equal(r.status, 502);
      assert.ok(!r.body.includes('broken table'), 'no internal detail in the answer');
      await waitFor('the access line', async () => lines.some((l) => l.event === 'access'), 5000, 5);
      assert.equal(lines.filter((l) => l.event === 'proxy.internal_error' && l.err === 'broken table').length, 1);
      const access = lines.filter((l) => l.event === 'access');
      assert.equal(access.length, 1);
      assert.equal(access[0].status, 502);
      assert.equal(access[0].outcome, 'bad_gateway');
      assert.equal((await request(p.port, '/any/')).status, 502, 'and it keeps serving');
    } finally {
      await p.close();
    }
  });

  it('writes one access-log line per request, without the query string, with its final outcome', async () => {
    const { logger, lines } = capturingLogger('info');
    // Nothing listens on a closed backend's port: refused, 502.
    const gone = await startBackend((_req, res) => res.end());
    await gone.close();
    const table = tableOf([backend('slow', 's1', slow.url), backend('dead', 'd1', gone.url)]);
    const p = await startProxy(new StaticRoutes(table), testConfig({ accessLog: true }), { logger });
    try {
      await request(p.port, '/slow/a?token=secret', { headers: { 'x-request-id': 'log-test-1' } });
      await request(p.port, '/nope/');
      assert.equal((await request(p.port, '/dead/')).status, 502);
      // A client that gives up while the backend is still working: its connection closed, nothing answered.
      const reached = slow.requests;
      const cut = http.get({ port: p.port, path: '/slow/?ms=400', agent: false });
      cut.on('error', () => undefined);
      await waitFor('the request to reach the backend', async () => slow.requests > reached, 5000, 5);
      cut.destroy();
      await waitFor('the fourth access line', async () => lines.filter((l) => l.event === 'access').length >= 4, 5000, 5);
      const access = lines.filter((l) => l.event === 'access');
      assert.equal(access.length, 4);
      assert.equal(access[0].requestId, 'log-test-1');
      assert.equal(access[0].status, 200);
      assert.equal(access[0].path, '/slow/a');
      assert.equal(access[0].tool, 'slow');
      assert.equal(access[0].backend, 's1');
      assert.equal(access[0].attempts, 1);
      // The outcome of a relayed answer: the line is written once the request's handling is over, not when
      // the response closes (that came first, and the line said "").
      assert.equal(access[0].outcome, 'ok');
      assert.equal(access[1].status, 404);
      assert.equal(access[1].outcome, 'no_such_tool');
      assert.equal(access[2].status, 502);
      // Refused outright is told apart from a backend that answered badly.
      assert.equal(access[2].outcome, 'backend_refused');
      assert.equal(access[2].backend, 'd1');
      assert.equal(access[3].status, 499);
      assert.equal(access[3].outcome, 'client_gone');
      assert.ok(!JSON.stringify(lines).includes('secret'));
    } finally {
      await p.close();
    }
  });
});
