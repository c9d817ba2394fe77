import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import http from 'node:http';
import { StaticRoutes, backend, request, tableOf } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, curl, httpsRequest, makePair, writePair, type Pair } from '../support/certificates';
import { closeServer, listen, startBackend, type Backend } from '../support/backend';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { waitFor } from '../support/wait';

describe('proxy HTTPS listener', function () {
  this.timeout(30_000);
  let echo: Backend;
  let wsServer: http.Server;
  let wss: WebSocketServer;
  let p: TlsProxy;
  let logs: CapturedLogs;
  const pairs: Record<string, Pair> = {};
  let ca: string[];

  before(async () => {
    echo = await startBackend((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
    wsServer = http.createServer();
    wss = new WebSocketServer({ server: wsServer });
    wss.on('connection', (ws, req) => {
      ws.send(`hello proto=${req.headers['x-forwarded-proto']}`);
      ws.on('message', (d) => ws.send(`echo:${d.toString()}`));
    });
    const wsPort = await listen(wsServer);
    pairs.fallback = await makePair(['fallback.example.test']);
    pairs.a = await makePair(['a.example.test']);
    pairs.wild = await makePair(['*.tools.example.test']);
    pairs.exact = await makePair(['x.tools.example.test']);
    ca = Object.values(pairs).map((x) => x.cert);
    const dir = certDir();
    const fallback = writePair(certDir(), 'fullchain', pairs.fallback);
    for (const name of ['a', 'wild', 'exact']) writePair(dir, name, pairs[name]);
    const routes = new StaticRoutes(tableOf([backend('echo', 'e1', echo.url), backend('ws', 'w1', `http://127.0.0.1:${wsPort}`)]));
    logs = capturingLogger('info');
    p = await startTlsProxy(routes, { cert: fallback.cert, key: fallback.key, certDir: dir }, { proxy: { accessLog: true }, logger: logs.logger });
  });
  after(async () => {
    await p.close();
    await echo.close();
    wss.close();
    await closeServer(wsServer);
  });

  it("serves proxied requests to Node's https client and to curl --http1.1, with X-Forwarded-Proto: https and Forwarded proto=https", async () => {
    const r = await httpsRequest(p.tlsPort, '/echo/x?y=1', { servername: 'a.example.test', ca });
    assert.equal(r.status, 200);
    assert.equal(r.fingerprint, pairs.a.fingerprint);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/echo/x?y=1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers.forwarded, 'for=127.0.0.1;host="a.example.test";proto=https');

    const caFile = path.join(certDir(), 'ca.pem');
    writeFileSync(caFile, ca.join(''));
    const out = await curl(['--cacert', caFile, '--resolve', `a.example.test:${p.tlsPort}:127.0.0.1`, `https://a.example.test:${p.tlsPort}/echo/curl`]);
    const viaCurl = JSON.parse(out) as { headers: Record<string, string> };
    assert.equal(viaCurl.headers['x-forwarded-proto'], 'https');
    assert.match(viaCurl.headers.forwarded, /;proto=https$/);
  });

  it('chooses the certificate by SNI: an exact name over a wildcard, a wildcard for one label more, the default pair otherwise', async () => {
    const served = async (servername: string | null) => (await httpsRequest(p.tlsPort, '/echo/', { servername, ca })).fingerprint;
    assert.equal(await served('a.example.test'), pairs.a.fingerprint);
    assert.equal(await served('A.Example.Test'), pairs.a.fingerprint, 'SNI names compare without case');
    assert.equal(await served('x.tools.example.test'), pairs.exact.fingerprint);
    assert.equal(await served('wiki.tools.example.test'), pairs.wild.fingerprint);
    assert.equal(await served('deep.wiki.tools.example.test'), pairs.fallback.fingerprint, 'a wildcard covers one label');
    assert.equal(await served('tools.example.test'), pairs.fallback.fingerprint, 'a wildcard does not cover its own domain');
    assert.equal(await served('unknown.example.test'), pairs.fallback.fingerprint);
    assert.equal(await served(null), pairs.fallback.fingerprint);
    // curl checks the name against the certificate itself: the wildcard passes for a host under it.
    const caFile = path.join(certDir(), 'ca.pem');
    writeFileSync(caFile, pairs.wild.cert);
    const out = await curl(['--cacert', caFile, '--resolve', `wiki.tools.example.test:${p.tlsPort}:127.0.0.1`, `https://wiki.tools.example.test:${p.tlsPort}/echo/`]);
    assert.equal((JSON.parse(out) as { url: string }).url, '/echo/');
  });

  it('relays WebSockets over HTTP/1.1 on the TLS port', async () => {
    // ws hands TLS options to Node's https client, servername among them (its types leave that one out).
    const options: WebSocket.ClientOptions & { servername: string } = { ca, servername: 'a.example.test', headers: { host: 'a.example.test' } };
    const ws = new WebSocket(`wss://127.0.0.1:${p.tlsPort}/ws/socket`, options);
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      await waitFor('the greeting', () => messages.length >= 1);
      ws.send('over tls');
      await waitFor('the echo', () => messages.length >= 2);
      assert.deepEqual(messages, ['hello proto=https', 'echo:over tls']);
    } finally {
      ws.close();
    }
  });

  it('writes proto, tls, sni, ua, referer (without query or credentials), bytes and traceId in the access line', async () => {
    const r = await httpsRequest(p.tlsPort, '/echo/logged?secret=1', {
      servername: 'a.example.test',
      ca,
      headers: { 'user-agent': `agent/${'x'.repeat(400)}`, referer: 'https://user:pw@site.example/page?token=abc#frag' },
    });
    assert.equal(r.status, 200);
    const line = await waitFor('the access line', () => logs.events('access').find((l) => l.path === '/echo/logged'));
    assert.equal(line.proto, 'HTTP/1.1');
    assert.equal(line.tls, r.protocol);
    assert.match(String(line.tls), /^TLSv1\.[23]$/);
    assert.equal(line.sni, 'a.example.test');
    assert.equal(String(line.ua).length, 256);
    assert.ok(String(line.ua).startsWith('agent/xxx'));
    assert.equal(line.referer, 'https://site.example/page');
    const bytes = Number(line.bytes);
    assert.ok(bytes > Buffer.byteLength(r.body) && bytes < Buffer.byteLength(r.body) + 1024, `bytes ${bytes} for a body of ${Buffer.byteLength(r.body)}`);
    const sent = (JSON.parse(r.body) as { headers: Record<string, string> }).headers.traceparent;
    assert.equal(line.traceId, sent.split('-')[1]);
    assert.ok(!JSON.stringify(line).includes('secret') && !JSON.stringify(line).includes('token') && !JSON.stringify(line).includes('pw'));

    // The plain port (redirecting to https here) logs no TLS fields.
    assert.equal((await request(p.port, '/echo/plain')).status, 301);
    const plain = await waitFor('the plain line', () => logs.events('access').find((l) => l.path === '/echo/plain'));
    assert.equal(plain.proto, 'HTTP/1.1');
    assert.equal(plain.tls, undefined);
    assert.equal(plain.sni, undefined);
  });

  it('names the certificate it served in tls.certificate_loaded lines', () => {
    const loaded = logs.events('tls.certificate_loaded');
    assert.deepEqual(loaded.map((l) => l.name).sort(), ['a', 'default', 'exact', 'wild']);
    const wild = loaded.find((l) => l.name === 'wild')!;
    assert.deepEqual(wild.hosts, ['*.tools.example.test']);
    assert.equal(wild.notAfter, new Date(new X509Certificate(pairs.wild.cert).validTo).toISOString());
  });
});
