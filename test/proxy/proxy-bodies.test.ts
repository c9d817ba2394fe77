import assert from 'node:assert/strict';
import http from 'node:http';
import { StaticRoutes, backend, request, startProxy, startRawBackend, tableOf, testConfig, type TestProxy } from './helpers';
import { deadPort, startBackend, type Backend } from '../support/backend';
import { capturingLogger, type LogLine } from '../support/logs';
import { metricValue } from '../support/metrics';
import { waitFor } from '../support/wait';

/** A checksum of bytes in order: a body that arrives whole and unshuffled has the sender's. */
function sumOf(bytes: Buffer, sum = 0): number {
  for (const b of bytes) sum = (sum * 31 + b) >>> 0;
  return sum;
}

/** What the body-counting backend saw: events in order, and body bytes in total. */
interface Sink {
  events: string[];
  bytes: number;
}

/**
 * A backend that answers `{ bytes, sum, length }` once the whole body came (`length`: the Content-Length
 * it was sent). `lazy`: reads nothing for that long first.
 */
function sinkHandler(sink: Sink, lazyMs = 0): http.RequestListener {
  return (req, res) => {
    sink.events.push(`${req.method} ${req.url} start`);
    let bytes = 0;
    let sum = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      sink.bytes += c.length;
      sum = sumOf(c, sum);
    });
    req.on('end', () => res.end(JSON.stringify({ bytes, sum, length: req.headers['content-length'] ?? null })));
    req.on('close', () => {
      if (!req.complete) sink.events.push(`${req.method} ${req.url} aborted`);
    });
    if (lazyMs > 0) {
      req.pause();
      setTimeout(() => req.resume(), lazyMs);
    }
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The whole answer came (false: cut short). */
  complete: boolean;
}

/** A request whose body the test writes itself, counting what it sent. */
class Upload {
  readonly req: http.ClientRequest;
  readonly answer: Promise<Answer>;
  /** Resolves once the proxy's server has the request: its 100 Continue (or an answer). */
  readonly taken: Promise<void>;
  /** Body bytes written so far, and their checksum. */
  sent = 0;
  sum = 0;

  constructor(port: number, path: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; localAddress?: string } = {}) {
    let taken!: () => void;
    this.taken = new Promise<void>((r) => (taken = r));
    this.req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method: opts.method ?? 'POST',
      agent: false,
      localAddress: opts.localAddress,
      headers: { expect: '100-continue', accept: 'application/json', ...opts.headers },
    });
    this.req.on('continue', taken);
    this.answer = new Promise<Answer>((resolve) => {
      this.req.on('response', (res) => {
        taken();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('error', () => undefined);
        res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete }));
      });
      this.req.on('error', () => resolve({ status: 0, headers: {}, body: '', complete: false }));
    });
    this.req.flushHeaders();
  }

  /** Writes `n` bytes of the body; true when the socket took them at once. */
  write(n: number, fill = 'x'): boolean {
    const chunk = Buffer.alloc(n, fill);
    this.sent += n;
    this.sum = sumOf(chunk, this.sum);
    return this.req.write(chunk);
  }

  /** Writes `total` bytes in all, honouring backpressure, then ends the request. */
  async finish(total: number): Promise<void> {
    while (this.sent < total && !this.req.destroyed) {
      if (!this.write(Math.min(64 * 1024, total - this.sent), String.fromCharCode(97 + (this.sent % 26)))) {
        // The proxy may answer and close before the body is all sent: no drain then.
        await new Promise<void>((resolve) => {
          const go = () => {
            this.req.off('drain', go);
            this.req.off('close', go);
            resolve();
          };
          this.req.on('drain', go);
          this.req.on('close', go);
        });
      }
    }
    this.req.end();
  }
}

describe('proxy: request bodies from slow clients', function () {
  this.timeout(30_000);
  const sink: Sink = { events: [], bytes: 0 };
  const captured = capturingLogger('info');
  const accessLines = (): LogLine[] => captured.events('access');
  const proxies: TestProxy[] = [];
  const servers: Array<{ close(): Promise<void> }> = [];
  let routes: StaticRoutes;
  /** Requests the holding backend keeps unanswered until the test lets them go. */
  const held: Array<{ url: string; res: http.ServerResponse }> = [];

  async function proxyWith(proxy: Record<string, unknown>): Promise<TestProxy> {
    const p = await startProxy(routes, testConfig({ accessLog: true, ...proxy }), { logger: captured.logger });
    proxies.push(p);
    return p;
  }

  async function errors(p: TestProxy, kind: string): Promise<number> {
    return metricValue(await p.metrics.registry.metrics(), 'switchboard_proxy_errors_total', { kind });
  }

  /**
   * A request whose body of `length` bytes stops after `sent` of them, through a proxy with a 1 KiB buffer
   * and a 300 ms body idle timeout; with the request_timeout count before it.
   */
  async function stalledUpload(path: string, length: number, sent: number): Promise<{ p: TestProxy; before: number; answer: Promise<Answer> }> {
    const p = await proxyWith({ bufferBodyBytes: 1024, bodyIdleTimeoutMs: 300 });
    const before = await errors(p, 'request_timeout');
    const u = new Upload(p.port, path, { headers: { 'content-length': length } });
    await u.taken;
    u.write(sent);
    return { p, before, answer: u.answer };
  }

  /** The access line of the request to `path` (the last one). */
  function accessOf(path: string): LogLine | undefined {
    return accessLines()
      .filter((l) => l.path === path)
      .pop();
  }

  before(async () => {
    const start = async (answer: http.RequestListener): Promise<Backend> => {
      const b = await startBackend(answer);
      servers.push(b);
      return b;
    };
    const resetter = async () => {
      const r = await startRawBackend((s) => s.once('data', () => s.resetAndDestroy()));
      servers.push(r);
      return r;
    };
    const up = await start(sinkHandler(sink));
    const lazy = await start(sinkHandler(sink, 1000));
    // Answers at once and keeps its answer open until the body has come.
    const early = await start((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started\n');
      req.resume();
      req.on('end', () => res.end('done\n'));
    });
    const hold = await start((req, res) => void held.push({ url: req.url ?? '', res }));
    const [r1, r2, r3] = [await resetter(), await resetter(), await resetter()];
    routes = new StaticRoutes(
      tableOf([
        backend('up', 'u1', up.url),
        backend('lazy', 'l1', lazy.url),
        backend('early', 'e1', early.url),
        backend('hold', 'h1', hold.url),
        backend('resets', 'r1', r1.url),
        backend('resets', 'r2', r2.url),
        backend('flaky', 'r3', r3.url),
        backend('flaky', 'f1', up.url),
        backend('gone', 'g1', `http://127.0.0.1:${await deadPort()}`),
      ]),
    );
  });
  afterEach(async () => {
    for (const h of held.splice(0)) h.res.end('released');
    for (const p of proxies.splice(0)) await p.close();
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('a slow upload holds no backend connection: 24 clients dripping small bodies, the same tool keeps serving others', async () => {
    // Four backend connections for the tool: were they held by the slow uploads, every other request would
    // wait for one and get 504 when its connect timer ran out.
    const p = await proxyWith({ bufferBodyBytes: 1024, maxConnectionsPerClient: 0, agent: { maxSockets: 4, maxFreeSockets: 4, freeSocketTimeoutMs: 1000 } });
    const from = sink.events.length;
    const slow = Array.from({ length: 24 }, (_, i) => new Upload(p.port, `/up/slow-${i}`, { headers: { 'content-length': 64 } }));
    await Promise.all(slow.map((u) => u.taken));
    for (const u of slow) u.write(1);
    const drip = setInterval(() => {
      for (const u of slow) if (u.sent < 63) u.write(1);
    }, 20);
    try {
      const others = await Promise.all(Array.from({ length: 20 }, (_, i) => request(p.port, `/up/other-${i}`)));
      assert.deepEqual(
        others.map((r) => r.status),
        others.map(() => 200),
      );
      assert.deepEqual(
        sink.events.slice(from).filter((e) => e.startsWith('POST')),
        [],
        'no slow upload reached the backend while its body was coming',
      );
    } finally {
      clearInterval(drip);
    }
    for (const u of slow) void u.finish(64);
    for (const [i, a] of (await Promise.all(slow.map((u) => u.answer))).entries()) {
      assert.equal(a.status, 200);
      // Sent on with its length, whole.
      assert.deepEqual(JSON.parse(a.body), { bytes: 64, sum: slow[i].sum, length: '64' });
    }
  });

  it('the body idle timeout answers 408 to a small body that stops coming, and closes the connection; nothing reached the backend', async () => {
    const from = sink.events.length;
    const { p, before, answer } = await stalledUpload('/up/stalled', 100, 10);
    const a = await answer;
    assert.equal(a.status, 408);
    assert.equal(a.headers.connection, 'close');
    assert.equal(JSON.parse(a.body).error.code, 'request_timeout');
    assert.deepEqual(sink.events.slice(from), []);
    assert.equal((await errors(p, 'request_timeout')) - before, 1);
    await waitFor('the access line', () => accessOf('/up/stalled'), 2000, 10);
    assert.deepEqual([accessOf('/up/stalled')!.status, accessOf('/up/stalled')!.outcome], [408, 'request_timeout']);
  });

  it('the body idle timeout answers 408 to a streamed body that goes silent before the answer, and aborts the backend request', async () => {
    const { p, before, answer } = await stalledUpload('/up/silent', 10_000, 2000);
    await waitFor('the backend to see the request', () => sink.events.includes('POST /up/silent start'), 2000, 10);
    const a = await answer;
    assert.equal(a.status, 408);
    assert.equal(a.headers.connection, 'close');
    await waitFor('the backend request to be aborted', () => sink.events.includes('POST /up/silent aborted'), 2000, 10);
    assert.equal((await errors(p, 'request_timeout')) - before, 1);
  });

  it('a body that goes silent once the answer has started: the exchange is cut', async () => {
    const { p, before, answer } = await stalledUpload('/early/', 10_000, 2000);
    const a = await answer;
    assert.equal(a.status, 200);
    assert.equal(a.complete, false, `cut short, got ${JSON.stringify(a.body)}`);
    assert.equal(a.body, 'started\n');
    assert.equal((await errors(p, 'request_timeout')) - before, 1);
  });

  it('the body idle timeout does not count the time a streamed body waits on a backend that reads slowly', async () => {
    // The backend reads nothing for 1 s, more than three idle timeouts: the body backs up to the client.
    const p = await proxyWith({ bufferBodyBytes: 1024, bodyIdleTimeoutMs: 300, responseTimeoutMs: 10_000 });
    const total = 32 * 1024 * 1024;
    const u = new Upload(p.port, '/lazy/', { headers: { 'content-length': total } });
    await u.taken;
    await u.finish(total);
    const a = await u.answer;
    assert.equal(a.status, 200, a.body);
    assert.deepEqual(JSON.parse(a.body), { bytes: total, sum: u.sum, length: String(total) });
  });

  it('a chunked body that grows past the buffer streams on before it ends; a small one is sent whole, with its length', async () => {
    const p = await proxyWith({ bufferBodyBytes: 1024 });
    const big = new Upload(p.port, '/up/chunked-big');
    await big.taken;
    const bytesBefore = sink.bytes;
    big.write(4096, 'a');
    await waitFor('the first 4 KiB at the backend while the client still sends', () => sink.bytes - bytesBefore >= 4096, 5000, 10);
    big.write(1000, 'b');
    big.req.end();
    const a = await big.answer;
    assert.deepEqual(JSON.parse(a.body), { bytes: 5096, sum: big.sum, length: null });

    const small = new Upload(p.port, '/up/chunked-small');
    await small.taken;
    small.write(100, 'c');
    small.req.end();
    assert.deepEqual(JSON.parse((await small.answer).body), { bytes: 100, sum: small.sum, length: '100' });
  });

  it('a chunked body past the buffer whose backend refuses: 502, and its keep-alive connection serves the next request', async () => {
    const p = await proxyWith({ bufferBodyBytes: 1024 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const post = (body: Buffer | null) =>
        new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: p.port, path: '/gone/', method: 'POST', agent, headers: body ? {} : { 'content-length': 0 } }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
          });
          req.on('error', reject);
          // Written, then ended: chunked (a body given to end() alone would go with a Content-Length).
          if (body) req.write(body);
          req.end();
        });
      // Larger than the socket buffers: the part read stays paused unless the proxy drops the rest.
      const first = await post(Buffer.alloc(8 * 1024 * 1024, 'z'));
      assert.equal(first.status, 502);
      const second = await post(null);
      assert.equal(second.status, 502);
      assert.equal(second.socket, first.socket, 'the same connection');
    } finally {
      agent.destroy();
    }
  });

  it('a body read whole is sent again on another backend after a reset when the method is idempotent (PUT), never a POST or a streamed body', async () => {
    const p = await proxyWith({ bufferBodyBytes: 1024 });
    // flaky: a backend that resets every request, then a good one.
    for (let i = 0; i < 3; i++) {
      const put = await request(p.port, `/flaky/put-${i}`, { method: 'PUT', body: Buffer.alloc(100, 'p') });
      assert.equal(put.status, 200, put.body);
      assert.deepEqual(JSON.parse(put.body), { bytes: 100, sum: sumOf(Buffer.alloc(100, 'p')), length: '100' });
    }
    await waitFor('three access lines', () => accessLines().filter((l) => String(l.path).startsWith('/flaky/put-')).length === 3, 2000, 10);
    assert.equal(accessOf('/flaky/put-0')!.attempts, 2, 'the first went to the resetting backend, then again to the good one');
    // resets: both backends reset.
    const cases: Array<[string, string, Buffer, number]> = [
      ['/resets/put-whole', 'PUT', Buffer.alloc(100, 'w'), 2],
      ['/resets/post-whole', 'POST', Buffer.alloc(100, 'w'), 1],
      ['/resets/put-streamed', 'PUT', Buffer.alloc(4096, 's'), 1],
    ];
    for (const [path, method, body, attempts] of cases) {
      const r = await request(p.port, path, { method, body });
      assert.equal(r.status, 502, path);
      await waitFor(`the access line of ${path}`, () => accessOf(path), 2000, 10);
      assert.equal(accessOf(path)!.attempts, attempts, path);
    }
  });

  it('one client address holds at most maxConnectionsPerClient backend connections per tool; past it, it waits for one of its own, then 503 with Retry-After; others are served', async () => {
    // connectTimeoutMs: how long a request past its client's share waits for one of that client's slots.
    const p = await proxyWith({ maxConnectionsPerClient: 2, trustedProxies: ['127.0.0.3'], connectTimeoutMs: 500 });
    const before = await errors(p, 'too_many_connections');
    const heldAt = () => held.map((h) => h.url);
    const hold = (path: string, opts: { localAddress?: string; headers?: http.OutgoingHttpHeaders } = {}) =>
      new Promise<Answer>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: p.port, path, agent: false, ...opts, headers: { accept: 'application/json', ...opts.headers } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete }));
        });
        req.on('error', reject);
        req.end();
      });
    const first = [hold('/hold/a'), hold('/hold/b')];
    await waitFor('two held at the backend', () => held.length === 2, 5000, 10);
    // A third from the same address waits for one of its two, in vain: 503.
    const over = await hold('/hold/c');
    assert.equal(over.status, 503);
    assert.equal(over.headers['retry-after'], '1');
    assert.equal(JSON.parse(over.body).error.code, 'too_many_connections');
    // Another tool, for the same client: its own share.
    assert.equal((await request(p.port, '/up/other-tool')).status, 200);
    // Another address; a forged X-Forwarded-For from it changes nothing.
    const second = [hold('/hold/d', { localAddress: '127.0.0.2' }), hold('/hold/e', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '10.7.7.7' } })];
    await waitFor('four held', () => held.length === 4, 5000, 10);
    assert.equal((await hold('/hold/f', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '10.8.8.8' } })).status, 503);
    // Behind a trusted proxy each client it names has a share of its own.
    const viaTrusted = (xff: string, path: string) => hold(path, { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': xff } });
    const third = [viaTrusted('10.1.1.1', '/hold/g'), viaTrusted('10.1.1.1', '/hold/h'), viaTrusted('10.1.1.2', '/hold/i')];
    await waitFor('seven held', () => held.length === 7, 5000, 10);
    assert.equal((await viaTrusted('10.1.1.1', '/hold/j')).status, 503);
    assert.deepEqual(heldAt().sort(), ['/hold/a', '/hold/b', '/hold/d', '/hold/e', '/hold/g', '/hold/h', '/hold/i']);
    assert.equal((await errors(p, 'too_many_connections')) - before, 3);
    await waitFor('the access line', () => accessOf('/hold/c'), 2000, 10);
    assert.deepEqual([accessOf('/hold/c')!.status, accessOf('/hold/c')!.outcome], [503, 'too_many_connections']);
    // A request waiting for its client's slot gets the first one given back. (Its 100 Continue: the
    // proxy has taken it, and it waits.)
    const waiting = new Upload(p.port, '/hold/k', { method: 'GET' });
    await waiting.taken;
    waiting.req.end();
    held.find((h) => h.url === '/hold/a')!.res.end('released');
    await waitFor('the waiting request at the backend', () => heldAt().includes('/hold/k'), 2000, 10);
    // Answered, each gives its connection back.
    for (const h of held.splice(0)) if (!h.res.writableEnded) h.res.end('released');
    const all = await Promise.all([...first, ...second, ...third, waiting.answer]);
    assert.deepEqual(
      all.map((a) => a.status),
      all.map(() => 200),
    );
  });
});
