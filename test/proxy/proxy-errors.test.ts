import assert from 'node:assert/strict';
import type http from 'node:http';
import { StaticRoutes, assignment, backend, rawRequest, request, startProxy, startRawBackend, tableOf, testConfig, type Reply, type TestProxy } from './helpers';
import { type Backend, startBackend, deadPort } from '../support/backend';
import { capturingLogger, type LogLine } from '../support/logs';
import { metricValue } from '../support/metrics';
import { waitFor } from '../support/wait';

type Raw = Awaited<ReturnType<typeof startRawBackend>>;

/** Checks the page in both formats: status, code, tool and request id named, no internal address. */
async function expectErrorPage(port: number, path: string, status: number, code: string, tool: string, secrets: string[]): Promise<void> {
  const check = (r: Reply) => {
    assert.equal(r.status, status, `${path}: ${r.body}`);
    for (const s of secrets) assert.ok(!r.body.includes(s), `the page must not reveal ${s}: ${r.body}`);
    assert.ok(!/\bat .*\.(ts|js):\d+/.test(r.body), 'no stack trace');
    assert.ok(r.body.includes(String(r.headers['x-request-id'])), 'names the request id');
    assert.ok(r.body.includes(tool), 'names the tool');
  };
  const html = await request(port, path, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  check(html);
  assert.match(String(html.headers['content-type']), /^text\/html/);
  const json = await request(port, path, { headers: { accept: 'application/json' } });
  check(json);
  assert.match(String(json.headers['content-type']), /^application\/json/);
  assert.equal(JSON.parse(json.body).error.code, code);
}

describe('proxy error answers', () => {
  let p: TestProxy;
  let hang: Backend;
  let reset: Raw;
  let badHeader: Raw;
  let badValue: Raw;
  let refusedPort: number;
  const hanging: http.ServerResponse[] = [];

  before(async () => {
    refusedPort = await deadPort();
    hang = await startBackend((_req, res) => {
      hanging.push(res); // never answers
    });
    // Reads the request, then resets the connection without a byte of answer.
    reset = await startRawBackend((s) => s.once('data', () => s.resetAndDestroy()));
    badHeader = await startRawBackend((s) =>
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nBad Header: x\r\ncontent-length: 2\r\n\r\nok')),
    );
    badValue = await startRawBackend((s) =>
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\ncontent-length: 2\r\n\r\nok')),
    );
    const routes = new StaticRoutes(
      tableOf(
        [
          backend('refused', 'r1', `http://127.0.0.1:${refusedPort}`),
          backend('hang', 'h1', hang.url),
          backend('reset', 'x1', reset.url),
          backend('badheader', 'b1', badHeader.url),
          backend('badvalue', 'v1', badValue.url),
        ],
        [assignment('refused', refusedPort)],
      ),
    );
    p = await startProxy(routes, testConfig({ connectTimeoutMs: 300, responseTimeoutMs: 300 }), { health: { baseCooloffMs: 1 } });
  });
  after(async () => {
    for (const r of hanging) r.destroy();
    await p.close();
    await Promise.all([hang.close(), reset.close(), badHeader.close(), badValue.close()]);
  });

  it('502 backend_refused when nothing accepts connections on the backend port, and the page says so', async () => {
    await expectErrorPage(p.port, '/refused/x', 502, 'backend_refused', 'refused', [String(refusedPort), '127.0.0.1', 'ECONNREFUSED']);
    const page = await request(p.port, '/refused/x');
    assert.match(page.body, /refused the connection: nothing accepts connections on its port/);
  });

  it('502 when the backend resets the connection, and the process lives on', async () => {
    await expectErrorPage(p.port, '/reset/x', 502, 'bad_gateway', 'reset', [String(reset.port), '127.0.0.1', 'ECONNRESET']);
    // An unhandled 'error' would have thrown out of the event loop and failed this test run.
    const again = await request(p.port, '/reset/y');
    assert.equal(again.status, 502);
  });

  it('504 (not a hang-up) when the backend does not answer in time', async () => {
    const t0 = Date.now();
    await expectErrorPage(p.port, '/hang/x', 504, 'gateway_timeout', 'hang', [String(hang.port), '127.0.0.1']);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('502 when the backend sends an invalid header name or value', async () => {
    await expectErrorPage(p.port, '/badheader/x', 502, 'bad_gateway', 'badheader', [String(badHeader.port), '127.0.0.1', 'HPE_']);
    await expectErrorPage(p.port, '/badvalue/x', 502, 'bad_gateway', 'badvalue', [String(badValue.port), '127.0.0.1', 'HPE_']);
  });

  it('counts the failures by kind', async () => {
    const text = await p.metrics.registry.metrics();
    for (const kind of ['refused', 'reset', 'timeout', 'bad_gateway']) {
      assert.match(text, new RegExp(`switchboard_proxy_errors_total\\{kind="${kind}"\\} [1-9]`), kind);
    }
    assert.match(text, /switchboard_proxy_requests_total\{code="502"\} [1-9]/);
    assert.match(text, /switchboard_proxy_requests_total\{code="504"\} [1-9]/);
  });

  /** A proxy with one tool on a backend of its own and its access log on; both are closed after `use`. */
  async function withToolProxy(tool: string, use: (q: TestProxy, b: Backend, access: (n: number) => Promise<LogLine[]>) => Promise<void>): Promise<void> {
    const b = await startBackend(tool);
    const captured = capturingLogger('info');
    const q = await startProxy(new StaticRoutes(tableOf([backend(tool, `${tool}-1`, b.url)])), testConfig({ accessLog: true }), { logger: captured.logger });
    const access = (n: number) =>
      waitFor(`${n} access lines`, () => {
        const lines = captured.events('access');
        return lines.length === n ? lines : null;
      });
    try {
      await use(q, b, access);
    } finally {
      await q.close();
      await b.close();
    }
  }

  it('505 for a request line of another HTTP than 1.x (HTTP/2.0, HTTP/0.9, HTTP/3.0, the HTTP/2 preface): nothing forwarded; counted and access-logged', async () => {
    await withToolProxy('versioned', async (q, b, access) => {
      // Lines Node's parser passes on: the handler answers them, as an exchange of its own.
      for (const version of ['2.0', '0.9']) {
        const text = await rawRequest(q.port, `GET /versioned/x HTTP/${version}\r\nHost: x\r\nAccept: application/json\r\n\r\n`);
        assert.match(text, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
        assert.match(text, /\r\nconnection: close\r\n/i);
        assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code, 'version_not_supported');
      }
      const html = await rawRequest(q.port, 'GET /versioned/x HTTP/2.0\r\nHost: x\r\nAccept: text/html\r\n\r\n');
      assert.match(html, /<h1>505 HTTP version not supported<\/h1>/);
      // Lines it refuses: answered by the clientError handler, counted by status.
      for (const line of ['GET /versioned/x HTTP/3.0', 'PRI * HTTP/2.0']) {
        assert.match(await rawRequest(q.port, `${line}\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 505 /);
      }
      assert.equal(b.requests, 0, 'nothing reached the backend');
      const text = await q.metrics.registry.metrics();
      assert.equal(metricValue(text, 'switchboard_proxy_errors_total', { kind: 'version_not_supported' }), 3);
      assert.equal(metricValue(text, 'switchboard_proxy_requests_total', { code: '505' }), 5);
      for (const l of await access(3)) assert.deepEqual([l.status, l.outcome, l.attempts], [505, 'version_not_supported', 0]);
    });
  });

  it('501 for a transfer coding besides chunked (gzip, chunked): nothing forwarded; counted and access-logged', async () => {
    await withToolProxy('coded', async (q, b, access) => {
      const send = (accept: string) => request(q.port, '/coded/x', { method: 'POST', headers: { accept, 'transfer-encoding': 'gzip, chunked' }, body: 'abc' });
      const json = await send('application/json');
      assert.equal(json.status, 501, json.body);
      assert.equal(json.headers.connection, 'close');
      assert.equal(JSON.parse(json.body).error.code, 'not_implemented');
      const html = await send('text/html');
      assert.equal(html.status, 501);
      assert.match(html.body, /<h1>501 Not implemented<\/h1>/);
      assert.ok(html.body.includes(String(html.headers['x-request-id'])), 'names the request id');
      assert.equal(b.requests, 0, 'nothing reached the backend');

      const text = await q.metrics.registry.metrics();
      assert.equal(metricValue(text, 'switchboard_proxy_errors_total', { kind: 'not_implemented' }), 2);
      assert.equal(metricValue(text, 'switchboard_proxy_requests_total', { code: '501' }), 2);
      for (const l of await access(2)) assert.deepEqual([l.status, l.outcome, l.attempts], [501, 'not_implemented', 0]);
    });
  });
});
