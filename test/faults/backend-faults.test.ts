import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { backend, startRawBackend } from '../proxy/helpers';
import { ProxyChild } from './proxy-child';
import { sleep } from '../support/wait';
import { startBackend, listen, type Backend } from '../support/backend';

// test/proxy/proxy-errors.test.ts already proves: refused -> 502, reset before the answer -> 502, no
// answer in time -> 504, invalid header name or value -> 502, each with the process living on. These are
// the faults it does not cover, against a proxy in a process of its own.

const RESPONSE_TIMEOUT_MS = 500;

interface Download {
  status: number;
  bytes: number;
  /** The body ended as announced (no abort, no error). */
  complete: boolean;
}

function download(port: number, path: string, opts: { method?: string; body?: Buffer } = {}): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: false }, (res) => {
      let bytes = 0;
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, bytes, complete });
      };
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => finish(res.complete));
      res.on('aborted', () => finish(false));
      res.on('error', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Answers the first request on each connection with keep-alive, and closes the connection without an
 * answer when a second request arrives on it: the moment a backend's keep-alive timer fires just as the
 * proxy reuses the idle connection.
 */
async function staleKeepAliveBackend() {
  const seen = { connections: 0, requests: 0, methods: [] as string[] };
  const server = net.createServer((s) => {
    seen.connections++;
    let buf = '';
    let answered = 0;
    s.on('error', () => undefined);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      // Requests here have no body or a small one announced by Content-Length: count heads.
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.slice(end + 4 + length);
        seen.requests++;
        seen.methods.push(head.split(' ')[0]);
        if (answered++ === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
        else s.destroy();
      }
    });
  });
  const port = await listen(server);
  return { seen, url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('backend faults through a proxy process', function () {
  this.timeout(60_000);
  let proxy: ProxyChild;
  let ok: Backend;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    proxy = await ProxyChild.start({ responseTimeoutMs: RESPONSE_TIMEOUT_MS, connectTimeoutMs: 500 });
    ok = await startBackend((req, res) => res.end(`ok ${req.url}`));
    cleanups.push(() => ok.close());
  });
  after(async () => {
    await proxy?.stop();
    for (const c of cleanups) await c();
  });

  async function route(tool: string, url: string): Promise<void> {
    await proxy.routes([backend('ok', 'o1', ok.url), backend(tool, `${tool}1`, url)]);
  }

  it('resets mid-body: the client sees the body cut short, the proxy lives on and the next request is fine', async () => {
    const raw = await startRawBackend((s) =>
      s.once('data', () => {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(1000)}`);
        setTimeout(() => s.resetAndDestroy(), 50);
      }),
    );
    cleanups.push(() => raw.close());
    await route('midreset', raw.url);
    const before = await proxy.stats();
    for (let i = 0; i < 5; i++) {
      const d = await download(proxy.port, '/midreset/');
      assert.equal(d.status, 200, 'the head was already relayed');
      assert.equal(d.complete, false, 'the client can tell the body is incomplete');
      assert.ok(d.bytes < 100000);
    }
    assert.ok(proxy.alive);
    const next = await download(proxy.port, '/ok/x');
    assert.deepEqual([next.status, next.complete], [200, true]);
    const after = await proxy.stats();
    assert.ok(after.upstreamSockets <= before.upstreamSockets + 1, `upstream sockets ${before.upstreamSockets} -> ${after.upstreamSockets}`);
  });

  it(`drips its body: delivered whole while every gap is shorter than proxy.responseTimeoutMs (${RESPONSE_TIMEOUT_MS} ms), however long the whole takes`, async () => {
    const drip = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-length': 8 * 10 });
      let n = 0;
      const t = setInterval(() => {
        res.write('0123456789');
        if (++n === 8) {
          clearInterval(t);
          res.end();
        }
      }, RESPONSE_TIMEOUT_MS / 2);
      res.on('close', () => clearInterval(t));
    });
    cleanups.push(() => drip.close());
    await route('drip', drip.url);
    const t0 = Date.now();
    const d = await download(proxy.port, '/drip/');
    assert.deepEqual(d, { status: 200, bytes: 80, complete: true });
    assert.ok(Date.now() - t0 > 3 * RESPONSE_TIMEOUT_MS, 'the whole took several response timeouts');
  });

  it('a gap longer than proxy.responseTimeoutMs cuts the body (the client is not left hanging)', async () => {
    const stall = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-length': 20 });
      res.write('0123456789');
      const t = setTimeout(() => res.end('0123456789'), 10 * RESPONSE_TIMEOUT_MS);
      res.on('close', () => clearTimeout(t));
    });
    cleanups.push(() => stall.close());
    await route('stall', stall.url);
    const d = await download(proxy.port, '/stall/');
    assert.deepEqual(d, { status: 200, bytes: 10, complete: false });
    await sleep(100);
    assert.equal(stall.server.listening && (await new Promise<number>((r) => stall.server.getConnections((_e, n) => r(n)))), 0, 'the upstream connection was closed');
  });

  it('closes an idle keep-alive connection just as it is reused: a GET is retried on a new connection, a POST with a body is not (502)', async () => {
    const stale = await staleKeepAliveBackend();
    cleanups.push(() => stale.close());
    await route('stale', stale.url);
    assert.equal((await download(proxy.port, '/stale/first')).status, 200);
    // The proxy reuses that connection; the backend drops it: the GET goes again on a fresh one.
    const again = await download(proxy.port, '/stale/second');
    assert.deepEqual([again.status, again.complete], [200, true]);
    assert.deepEqual(stale.seen.methods, ['GET', 'GET', 'GET']);
    assert.equal(stale.seen.connections, 2);
    // That retry's connection is not pooled; the next GET opens one that is, and a POST reuses it and is
    // dropped. Its body may have been read: sending it again could do twice what the client asked once.
    assert.equal((await download(proxy.port, '/stale/third')).status, 200);
    assert.equal(stale.seen.connections, 3);
    const post = await download(proxy.port, '/stale/post', { method: 'POST', body: Buffer.from('x'.repeat(1000)) });
    assert.equal(post.status, 502);
    assert.deepEqual(stale.seen.methods, ['GET', 'GET', 'GET', 'GET', 'POST'], 'the POST reached the backend once');
    assert.equal(stale.seen.connections, 3);
    assert.ok(proxy.alive);
  });
});
