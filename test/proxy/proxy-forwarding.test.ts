import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { StaticRoutes, backend, rawRequest, request, startProxy, startRawBackend, tableOf, testConfig, type TestProxy } from './helpers';
import { waitFor, sleep } from '../support/wait';
import { startBackend, deadPort, type Backend } from '../support/backend';

/** Answers with the headers it received. */
function headerEcho() {
  return startBackend((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  });
}

/** Reads the whole body; answers its length and sha256. */
function bodyCounter() {
  return startBackend((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
  });
}

describe('proxy forwarding', () => {
  describe('forwarded headers', () => {
    let echo: Backend;
    let p: TestProxy;
    let trustedProxy: TestProxy;

    before(async () => {
      echo = await headerEcho();
      const routes = new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)]));
      p = await startProxy(routes);
      trustedProxy = await startProxy(routes, testConfig({ trustedProxies: ['127.0.0.0/8'] }));
    });
    after(async () => {
      await p.close();
      await trustedProxy.close();
      await echo.close();
    });

    it('replaces X-Forwarded-* sent by an untrusted client', async () => {
      const r = await request(p.port, '/echo/', {
        headers: {
          host: 'proxy.example:8080',
          'x-forwarded-for': '6.6.6.6',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'evil.example',
          forwarded: 'for=6.6.6.6',
          'x-real-ip': '6.6.6.6',
        },
      });
      const h = JSON.parse(r.body);
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'proxy.example:8080');
      assert.equal(h.forwarded, 'for=127.0.0.1;host="proxy.example:8080";proto=http', 'Forwarded replaced as X-Forwarded-* are');
      assert.equal(h['x-real-ip'], undefined);
      assert.equal(h.host, 'proxy.example:8080', 'Host is kept for the backend');
    });

    it('extends the chain from a trusted proxy and keeps its proto and host', async () => {
      const r = await request(trustedProxy.port, '/echo/', {
        headers: {
          host: 'inner:1',
          'x-forwarded-for': '203.0.113.9, 10.0.0.2',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'tools.example.org',
          forwarded: 'for=203.0.113.9;proto=https',
        },
      });
      const h = JSON.parse(r.body);
      assert.equal(h.forwarded, 'for=203.0.113.9;proto=https, for=127.0.0.1;host="inner:1";proto=http');
      assert.equal(h['x-forwarded-for'], '203.0.113.9, 10.0.0.2, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'tools.example.org');
    });

    it('keeps a well-formed X-Request-Id, replaces a bad one, and echoes it to the client', async () => {
      const good = await request(p.port, '/echo/', { headers: { 'x-request-id': 'abc.DEF-123_x' } });
      assert.equal(JSON.parse(good.body)['x-request-id'], 'abc.DEF-123_x');
      assert.equal(good.headers['x-request-id'], 'abc.DEF-123_x');
      for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '']) {
        const r = await request(p.port, '/echo/', { headers: { 'x-request-id': bad } });
        const sent = JSON.parse(r.body)['x-request-id'];
        assert.notEqual(sent, bad);
        assert.match(sent, /^[A-Za-z0-9._-]{1,128}$/);
        assert.equal(r.headers['x-request-id'], sent);
      }
      const none = await request(p.port, '/echo/');
      assert.match(JSON.parse(none.body)['x-request-id'], /^[0-9a-f-]{36}$/);
    });

    it('removes hop-by-hop headers, including those the Connection header names', async () => {
      const r = await request(p.port, '/echo/', {
        headers: {
          connection: 'keep-alive, x-hop, x-forwarded-for',
          'x-hop': 'secret',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'proxy-authorization': 'Basic Zm9vOmJhcg==',
          'proxy-connection': 'keep-alive',
          upgrade: 'h2c',
          'x-end-to-end': 'kept',
        },
      });
      const h = JSON.parse(r.body);
      for (const gone of ['x-hop', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'upgrade']) assert.equal(h[gone], undefined, gone);
      assert.equal(h['x-end-to-end'], 'kept');
      assert.equal(h['x-forwarded-for'], '127.0.0.1', 'our own header survives a Connection listing');
      assert.notEqual(h.connection, 'keep-alive, x-hop, x-forwarded-for');
    });
  });

  describe('response headers', () => {
    let hop: Backend;
    let p: TestProxy;
    before(async () => {
      hop = await startBackend((req, res) => {
        if (req.url === '/hop/hints') {
          // An interim answer first (103 Early Hints), then the real one.
          res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
          res.setHeader('vary', ['accept', 'origin']);
          res.end('final');
          return;
        }
        res.setHeader('connection', 'keep-alive, x-internal');
        res.setHeader('x-internal', 'backend-only');
        res.setHeader('keep-alive', 'timeout=99');
        res.setHeader('proxy-authenticate', 'Basic');
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.setHeader('x-end-to-end', 'kept');
        res.end('hi');
      });
      p = await startProxy(new StaticRoutes(tableOf([backend('hop', 'h1', hop.url)])));
    });
    after(async () => {
      await p.close();
      await hop.close();
    });

    it('drops hop-by-hop response headers and keeps the rest', async () => {
      const r = await request(p.port, '/hop/');
      assert.equal(r.body, 'hi');
      assert.equal(r.headers['x-internal'], undefined);
      assert.equal(r.headers['proxy-authenticate'], undefined);
      assert.notEqual(r.headers['keep-alive'], 'timeout=99');
      assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
      assert.equal(r.headers['x-end-to-end'], 'kept');
    });

    it('drops the headers a second Connection line names, too', async () => {
      const raw = await startRawBackend((sock) =>
        sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: x-internal\r\nX-Internal: backend-only\r\nContent-Length: 2\r\n\r\nok')),
      );
      const q = await startProxy(new StaticRoutes(tableOf([backend('two', 't1', raw.url)])));
      try {
        const r = await request(q.port, '/two/');
        assert.equal(r.body, 'ok');
        assert.equal(r.headers['x-internal'], undefined);
      } finally {
        await q.close();
        await raw.close();
      }
    });

    it('relays the final answer after a 1xx interim one, repeated header lines included', async () => {
      const r = await rawRequest(p.port, 'GET /hop/hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(r, /^HTTP\/1\.1 200 /, r.slice(0, 200));
      assert.ok(r.endsWith('final'), r);
      const head = r.slice(0, r.indexOf('\r\n\r\n'));
      // Both Vary lines, however the engine holds them (two lines, or one joined by a comma).
      const vary = head.split('\r\n').filter((l) => /^vary:/i.test(l)).map((l) => l.slice(5).trim()).join(', ');
      assert.equal(vary, 'accept, origin');
    });
  });

  describe('connections', () => {
    let b: Backend;
    let p: TestProxy;
    const streaming: { closed: boolean; chunks: number } = { closed: false, chunks: 0 };
    before(async () => {
      b = await startBackend((req, res) => {
        if (req.url === '/b/stream') {
          // Endless download: a chunk every 10 ms until the client side goes away.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const t = setInterval(() => {
            streaming.chunks++;
            res.write(Buffer.alloc(1024, 1));
          }, 10);
          res.on('close', () => {
            clearInterval(t);
            streaming.closed = true;
          });
          return;
        }
        res.end('ok');
      });
      p = await startProxy(new StaticRoutes(tableOf([backend('b', 'b1', b.url)])));
    });
    after(async () => {
      await p.close();
      await b.close();
    });

    it('reuses backend connections (keep-alive): 50 sequential requests, far fewer than 50 connections', async () => {
      const before = b.connections;
      for (let i = 0; i < 50; i++) {
        const r = await request(p.port, '/b/x');
        assert.equal(r.status, 200);
      }
      const used = b.connections - before;
      assert.ok(used <= 3, `backend saw ${used} new connections for 50 requests`);
      for (const req of b.recent.slice(-50)) assert.notEqual(req.headers.connection, 'close', 'no forced Connection: close');
    });

    it('a client abort mid-download aborts the upstream request (the backend sees close)', async () => {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: p.port, path: '/b/stream', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
        setTimeout(() => reject(new Error('no data')), 2000);
      });
      await waitFor('backend response to close', () => streaming.closed, 2000, 10);
      const after = streaming.chunks;
      await sleep(100);
      assert.ok(streaming.chunks - after <= 1, 'the backend stopped writing');
    });
  });

  describe('retries', () => {
    let live: Backend;
    let counter: Backend;
    let p: TestProxy;
    let dead: number;
    const routes = new StaticRoutes();

    before(async () => {
      live = await startBackend((req, res) => res.end(`live ${req.method}`));
      counter = await bodyCounter();
      dead = await deadPort();
      p = await startProxy(routes, testConfig(), { health: { baseCooloffMs: 60_000 } });
    });
    after(async () => {
      await p.close();
      await live.close();
      await counter.close();
    });

    it('retries a GET on another backend when one refuses, and marks the dead one down', async () => {
      routes.table = tableOf([backend('rt', 'dead', `http://127.0.0.1:${dead}`), backend('rt', 'live', live.url)]);
      const r = await request(p.port, '/rt/');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'live GET');
      assert.ok(p.proxy.health.down().some((d) => d.key === 'rt/dead'), 'dead backend marked down');
      assert.ok(!p.proxy.health.down().some((d) => d.key === 'rt/live'));
      for (let i = 0; i < 4; i++) assert.equal((await request(p.port, '/rt/')).status, 200);
    });

    it('retries a POST whose backend refused the connection, with its whole body', async () => {
      routes.table = tableOf([backend('post', 'dead', `http://127.0.0.1:${dead}`), backend('post', 'counter', counter.url)]);
      const body = Buffer.alloc(1024 * 1024 + 7, 'x');
      const r = await request(p.port, '/post/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    });

    it('retries a GET that was reset, on another backend', async () => {
      const resetter = await startRawBackend((s) => s.once('data', () => s.resetAndDestroy()));
      try {
        routes.table = tableOf([backend('rst', 'reset', resetter.url), backend('rst', 'live', live.url)]);
        const r = await request(p.port, '/rst/');
        assert.equal(r.status, 200);
        assert.equal(r.body, 'live GET');
      } finally {
        await resetter.close();
      }
    });

    it('never retries a POST whose body had started streaming', async () => {
      // Takes some of the body, then resets: the bytes it consumed cannot be sent again.
      const eater = await startRawBackend((s) => {
        let seen = 0;
        s.on('data', (c) => {
          seen += c.length;
          if (seen > 64 * 1024) s.resetAndDestroy();
        });
      });
      try {
        const before = counter.requests;
        routes.table = tableOf([backend('eat', 'eater', eater.url), backend('eat', 'counter', counter.url)]);
        const r = await new Promise<number>((resolve) => {
          const req = http.request({ host: '127.0.0.1', port: p.port, path: '/eat/', method: 'POST', agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', () => resolve(-1)); // the proxy may close while we still upload
          let sent = 0;
          const pump = () => {
            while (sent < 4 * 1024 * 1024) {
              sent += 64 * 1024;
              if (!req.write(Buffer.alloc(64 * 1024, 'y'))) return void req.once('drain', pump);
            }
            req.end();
          };
          pump();
        });
        assert.ok(r === 502 || r === -1, `expected 502 or a closed connection, got ${r}`);
        assert.equal(counter.requests, before, 'the other backend never got the truncated body');
      } finally {
        await eater.close();
      }
    });
  });
});
