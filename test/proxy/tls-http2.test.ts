import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { StaticRoutes, backend, tableOf } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, curl, httpsRequest, makePair, writePair, type Pair } from '../support/certificates';
import { deadPort, startBackend, type Backend } from '../support/backend';
import { h2Once, h2Request, h2Session } from '../support/http2-client';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';
import { waitFor } from '../support/wait';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const NAME = 'site.example.test';

describe('proxy HTTPS listener: HTTP/2', function () {
  this.timeout(30_000);
  let echo: Backend;
  let p: TlsProxy;
  let logs: CapturedLogs;
  let pair: Pair;
  let caFile: string;
  let dir: string;
  /** Releases the long answers /echo/hold holds open. */
  const release: Array<() => void> = [];

  before(async () => {
    echo = await startBackend((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/echo/hold') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first half;');
          release.push(() => res.end('second half'));
          return;
        }
        if (req.url === '/echo/hop') {
          // Connection-specific headers an HTTP/1.1 answer may carry and an HTTP/2 one may not.
          res.setHeader('connection', 'x-secret');
          res.setHeader('x-secret', 'hidden');
          res.setHeader('keep-alive', 'timeout=5');
          res.setHeader('upgrade', 'h2c');
          res.setHeader('proxy-connection', 'keep-alive');
          res.setHeader('x-kept', 'yes');
          // No Content-Length: the answer comes chunked (Transfer-Encoding).
          res.write('hop ');
          res.end('by hop');
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
    });
    const dead = await deadPort();
    pair = await makePair([NAME, `*.tools.${NAME}`]);
    caFile = path.join(certDir(), 'ca.pem');
    writeFileSync(caFile, pair.cert);
    dir = certDir();
    const files = writePair(dir, 'site', pair);
    const routes = new StaticRoutes(
      tableOf([
        backend('echo', 'e1', echo.url),
        backend('down', 'd1', `http://127.0.0.1:${dead}`),
        backend('pair', 'p1', `http://127.0.0.1:${dead}`),
        backend('pair', 'p2', echo.url),
      ]),
    );
    logs = capturingLogger('info');
    p = await startTlsProxy(routes, { cert: files.cert, key: files.key, hsts: true, hstsMaxAgeSeconds: 600 }, { proxy: { accessLog: true }, top: { domain: `tools.${NAME}` }, logger: logs.logger });
  });
  after(async () => {
    for (const r of release) r();
    await p.close();
    await echo.close();
  });

  const opts = () => ({ servername: NAME, ca: pair.cert });

  it('routes by path and by host over HTTP/2 (:authority as Host), to Node\'s http2 client and curl --http2', async () => {
    const r = await h2Once(p.tlsPort, '/echo/x?y=1', opts());
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Seen;
    assert.equal(seen.url, '/echo/x?y=1');
    assert.equal(seen.headers.host, `${NAME}:${p.tlsPort}`, "the backend is sent the request's :authority as Host");
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-prefix'], '/echo');
    assert.match(seen.headers.forwarded, /;proto=https$/);
    assert.ok(!Object.keys(seen.headers).some((h) => h.startsWith(':')), 'no pseudo-header reaches the backend');
    assert.equal(r.headers['strict-transport-security'], 'max-age=600');

    const byHost = await h2Once(p.tlsPort, '/by-host', { ...opts(), headers: { ':authority': `echo.tools.${NAME}` } });
    assert.equal(byHost.status, 200);
    const seenByHost = JSON.parse(byHost.body) as Seen;
    assert.equal(seenByHost.url, '/by-host');
    assert.equal(seenByHost.headers.host, `echo.tools.${NAME}`);
    assert.equal(seenByHost.headers['x-forwarded-host'], `echo.tools.${NAME}`);

    const resolve = ['--resolve', `echo.tools.${NAME}:${p.tlsPort}:127.0.0.1`, '--resolve', `${NAME}:${p.tlsPort}:127.0.0.1`];
    const viaCurl = await curl(['--cacert', caFile, ...resolve, '--write-out', '\n%{http_version}', `https://echo.tools.${NAME}:${p.tlsPort}/curl`], '2');
    const [body, version] = viaCurl.split('\n');
    assert.equal(version, '2');
    assert.equal((JSON.parse(body) as Seen).url, '/curl');
    const viaCurl11 = await curl(['--cacert', caFile, ...resolve, '--write-out', '\n%{http_version}', `https://${NAME}:${p.tlsPort}/echo/curl11`]);
    assert.equal(viaCurl11.split('\n')[1], '1.1', 'HTTP/1.1 on the same port');
  });

  it('answers error pages over HTTP/2: 404 for an unknown tool, 502 for a backend that refuses, 400 for a Host other than :authority', async () => {
    // A refusal asks to close the connection; on HTTP/2 that header is never handed to Node, which would
    // drop it with a process warning.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await errorPages();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });

  async function errorPages(): Promise<void> {
    const missing = await h2Once(p.tlsPort, '/nosuch/x', { ...opts(), headers: { accept: 'application/json' } });
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'no_such_tool');
    assert.equal(missing.headers['content-length'], String(Buffer.byteLength(missing.body)));
    assert.equal(missing.headers['strict-transport-security'], 'max-age=600');
    const refused = await h2Once(p.tlsPort, '/down/x', opts());
    assert.equal(refused.status, 502);
    assert.match(refused.body, /refused the connection/);
    assert.equal(refused.headers.connection, undefined);
    const curl404 = await curl(['--cacert', caFile, '--resolve', `${NAME}:${p.tlsPort}:127.0.0.1`, '--write-out', '%{http_code} %{http_version}', '--output', '/dev/null', `https://${NAME}:${p.tlsPort}/nosuch/`], '2');
    assert.equal(curl404, '404 2');
    const twoHosts = await h2Once(p.tlsPort, '/echo/x', { ...opts(), headers: { ':authority': NAME, host: 'other.example.test' } });
    assert.equal(twoHosts.status, 400);
    assert.equal(twoHosts.headers.connection, undefined);
  }

  it('forwards request bodies over HTTP/2, with and without Content-Length, and answers HEAD without a body', async () => {
    const session = await h2Session(p.tlsPort, opts());
    try {
      const sized = await h2Request(session, '/echo/post', { method: 'POST', headers: { 'content-length': '5', 'content-type': 'text/plain' }, body: 'hello' });
      const seen = JSON.parse(sized.body) as Seen;
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body, 'hello');
      assert.equal(seen.headers['content-length'], '5');
      const big = 'x'.repeat(200_000);
      const unsized = await h2Request(session, '/echo/post', { method: 'POST', body: big });
      const seenBig = JSON.parse(unsized.body) as Seen;
      assert.equal(seenBig.body.length, big.length, 'a body without Content-Length goes to the backend whole (chunked)');
      const head = await h2Request(session, '/echo/x', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
    } finally {
      session.close();
    }
    const viaCurl = await curl(['--cacert', caFile, '--resolve', `${NAME}:${p.tlsPort}:127.0.0.1`, '--data-binary', 'from curl', `https://${NAME}:${p.tlsPort}/echo/post`], '2');
    assert.equal((JSON.parse(viaCurl) as Seen).body, 'from curl');
  });

  it('retries a refused backend over HTTP/2 and marks it down (passive health)', async () => {
    const session = await h2Session(p.tlsPort, opts());
    try {
      for (let i = 0; i < 4; i++) {
        const r = await h2Request(session, `/pair/${i}`);
        assert.equal(r.status, 200, `request ${i}`);
      }
    } finally {
      session.close();
    }
    const lines = await waitFor('four access lines', () => {
      const l = logs.events('access').filter((x) => String(x.path).startsWith('/pair/'));
      return l.length === 4 ? l : null;
    });
    assert.ok(lines.some((l) => l.attempts === 2), 'one request went to the refusing backend first, then to the other');
    assert.ok(lines.every((l) => l.backend === 'p2' && l.status === 200));
    assert.ok(p.proxy.health.down().some((d) => d.key.includes('p1')), 'the refusing backend is down');
  });

  it('logs proto h2 with the TLS version, SNI and the answer bytes in the access line, and counts it in the metrics', async () => {
    const counted = async () => metricValue(await p.metrics.registry.metrics(), 'switchboard_proxy_requests_total', { code: '200' });
    const before = await counted();
    const r = await h2Once(p.tlsPort, '/echo/logged?token=1', opts());
    const line = await waitFor('the access line', () => logs.events('access').find((l) => l.path === '/echo/logged'));
    assert.equal(line.proto, 'h2');
    assert.equal(line.status, 200);
    assert.match(String(line.tls), /^TLSv1\.[23]$/);
    assert.equal(line.sni, NAME);
    assert.match(String(line.remote), /127\.0\.0\.1$/);
    assert.equal(line.bytes, Buffer.byteLength(r.body));
    assert.equal(line.outcome, 'ok');
    assert.equal(await counted(), before + 1);
  });

  it('strips the headers HTTP/2 forbids from a backend answer (Connection and what it lists, Keep-Alive, Upgrade, Transfer-Encoding)', async () => {
    const r = await h2Once(p.tlsPort, '/echo/hop', opts());
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hop by hop');
    assert.equal(r.headers['x-kept'], 'yes');
    for (const h of ['connection', 'x-secret', 'keep-alive', 'upgrade', 'proxy-connection', 'transfer-encoding']) assert.equal(r.headers[h], undefined, h);
    const viaCurl = await curl(['--cacert', caFile, '--resolve', `${NAME}:${p.tlsPort}:127.0.0.1`, `https://${NAME}:${p.tlsPort}/echo/hop`], '2');
    assert.equal(viaCurl, 'hop by hop', 'curl takes the answer as valid HTTP/2');
  });

  it('refuses CONNECT over HTTP/2 with 501 and its page, and offers no extended CONNECT (RFC 8441 WebSockets)', async () => {
    const session = await h2Session(p.tlsPort, opts());
    try {
      assert.notEqual(session.remoteSettings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised');
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'CONNECT', ':authority': 'elsewhere.example.test:443', accept: 'application/json' }, { endStream: false });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => {
          // As a client does with a tunnel refused: its side of the stream ends too.
          stream.close();
          resolve({ status, body });
        });
        stream.on('error', reject);
      });
      assert.equal(r.status, 501);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'connect_refused');
      // The session is still good for requests.
      assert.equal((await h2Request(session, '/echo/after')).status, 200);
    } finally {
      session.close();
    }
    const line = await waitFor('the access line', () => logs.events('access').find((l) => l.method === 'CONNECT'));
    assert.equal(line.status, 501);
    assert.equal(line.outcome, 'connect_refused');
  });

  it('keeps an HTTP/1.1 request and an HTTP/2 stream open across a certificate swap: both finish; new connections get the new pair', async () => {
    const renewed = await makePair([NAME]);
    const ca = [pair.cert, renewed.cert];
    const held = release.length;
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, servername: NAME });
    const session = await h2Session(p.tlsPort, { servername: NAME, ca });
    try {
      const viaHttp1 = new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: p.tlsPort, path: '/echo/hold', agent, headers: { host: NAME } }, (res: http.IncomingMessage) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(body));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      const viaHttp2 = h2Request(session, '/echo/hold');
      await waitFor('the backend to hold both', () => release.length >= held + 2);
      // A renewal: the pair written over, then the reload SIGHUP asks for.
      writePair(dir, 'site', renewed);
      assert.equal((await p.certificates.reload('SIGHUP')).changed, 1);
      const fresh = await h2Session(p.tlsPort, { servername: NAME, ca });
      try {
        const socket = fresh.socket as unknown as import('node:tls').TLSSocket;
        assert.equal(socket.getPeerCertificate().fingerprint256, renewed.fingerprint, 'a new HTTP/2 session gets the renewed pair');
        assert.equal((await h2Request(fresh, '/echo/fresh')).status, 200);
      } finally {
        fresh.close();
      }
      assert.equal((await httpsRequest(p.tlsPort, '/echo/q', { servername: NAME, ca })).fingerprint, renewed.fingerprint);
      for (const r of release.slice(held)) r();
      assert.equal(await viaHttp1, 'first half;second half');
      const h2 = await viaHttp2;
      assert.equal(h2.status, 200);
      assert.equal(h2.body, 'first half;second half');
      assert.equal((await h2Request(session, '/echo/again')).status, 200, 'the old session goes on');
    } finally {
      agent.destroy();
      session.close();
      writePair(dir, 'site', pair);
      await p.certificates.reload('SIGHUP');
    }
  });

  it('offers HTTP/1.1 only with proxy.tls.http2.enabled off', async () => {
    const files = writePair(certDir(), 'site', pair);
    const q = await startTlsProxy(new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)])), { cert: files.cert, key: files.key, http2: { enabled: false } });
    try {
      const alpn = await new Promise<string | false | null>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: q.tlsPort, servername: NAME, ca: pair.cert, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
          resolve(socket.alpnProtocol);
          socket.destroy();
        });
        socket.once('error', reject);
      });
      assert.notEqual(alpn, 'h2');
      assert.equal((await httpsRequest(q.tlsPort, '/echo/x', { servername: NAME, ca: pair.cert })).status, 200);
    } finally {
      await q.close();
    }
  });

  it('lets an open HTTP/2 stream finish when the proxy drains, and sends GOAWAY to its session', async () => {
    const logs2 = capturingLogger('info');
    const files = writePair(certDir(), 'site', pair);
    const routes = new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)]));
    const q = await startTlsProxy(routes, { cert: files.cert, key: files.key }, { logger: logs2.logger });
    const session = await h2Session(q.tlsPort, opts());
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const held = release.length;
    const open = h2Request(session, '/echo/hold');
    await waitFor('the backend to hold it', () => release.length > held);
    const closed = q.close();
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    release[held]();
    const r = await open;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'first half;second half');
    await closed;
    assert.equal(q.proxy.tls!.listening, false);
  });
});
