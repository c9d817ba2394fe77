import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { StaticRoutes, backend, rawRequest, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, curl, httpsRequest, makePair, writePair, type Pair } from '../support/certificates';
import { startBackend, type Backend } from '../support/backend';

/** A webroot as certbot's webroot mode leaves it: one challenge file, and things that are not challenges. */
function webroot(): { dir: string; token: string; content: string } {
  const dir = certDir();
  const challenges = path.join(dir, '.well-known', 'acme-challenge');
  mkdirSync(challenges, { recursive: true });
  const token = 'Tok3n_with-base64url_chars';
  const content = `${token}.thumbprint-of-the-account-key`;
  writeFileSync(path.join(challenges, token), content);
  writeFileSync(path.join(dir, 'secret.txt'), 'outside the challenge directory');
  symlinkSync(path.join(dir, 'secret.txt'), path.join(challenges, 'linked'));
  mkdirSync(path.join(challenges, 'adir'));
  return { dir, token, content };
}

describe('plain port: redirect to https, HSTS, ACME webroot', function () {
  this.timeout(30_000);
  let echo: Backend;
  let pair: Pair;
  let dir: string;
  let acme: ReturnType<typeof webroot>;
  /** Redirects, HSTS (max-age 600), ACME webroot. */
  let p: TlsProxy;
  /** Redirects to port 443, trusts 127.0.0.0/8, no webroot. */
  let behindLb: TlsProxy;
  const routes = () => new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)]));

  before(async () => {
    echo = await startBackend((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    });
    pair = await makePair(['tools.example.test', '*.tools.example.test']);
    dir = certDir();
    writePair(dir, 'tools', pair);
    acme = webroot();
    p = await startTlsProxy(routes(), { certDir: dir, hsts: true, hstsMaxAgeSeconds: 600, acmeWebroot: acme.dir });
    behindLb = await startTlsProxy(routes(), { certDir: dir, redirectPort: 443 }, { proxy: { trustedProxies: ['127.0.0.0/8'] } });
  });
  after(async () => {
    await p.close();
    await behindLb.close();
    await echo.close();
  });

  it('answers GET and HEAD on the plain port with 301 to the same URL on https, query included', async () => {
    for (const method of ['GET', 'HEAD']) {
      const r = await request(p.port, '/echo/a?b=1&c=2', { method, headers: { host: 'tools.example.test:8080' } });
      assert.equal(r.status, 301, method);
      assert.equal(r.headers.location, `https://tools.example.test:${p.tlsPort}/echo/a?b=1&c=2`);
      assert.equal(r.body, '');
    }
    assert.equal((await request(p.port, '/', { headers: { host: '[::1]:8080' } })).headers.location, `https://[::1]:${p.tlsPort}/`);
    assert.equal((await request(p.port, '/echo/', { headers: { host: 'Tools.Example.Test.' } })).headers.location, `https://tools.example.test:${p.tlsPort}/echo/`);
    // With no Host to name, or an absolute-form target, nothing to redirect to: 400, as the handler answers it.
    assert.equal((await rawRequest(p.port, 'GET /echo/ HTTP/1.0\r\n\r\n')).split('\r\n')[0], 'HTTP/1.1 400 Bad Request');
    assert.equal((await request(p.port, 'http://elsewhere.example/x', { headers: { host: 'tools.example.test' } })).status, 400);
    assert.equal(echo.requests, 0, 'nothing reached the backend over plain http');
    // curl follows the redirect to the TLS port and gets the backend's answer.
    const caFile = path.join(certDir(), 'ca.pem');
    writeFileSync(caFile, pair.cert);
    const out = await curl([
      '--location', '--cacert', caFile,
      '--resolve', `wiki.tools.example.test:${p.port}:127.0.0.1`, '--resolve', `wiki.tools.example.test:${p.tlsPort}:127.0.0.1`,
      `http://wiki.tools.example.test:${p.port}/echo/followed?x=1`,
    ]);
    const seen = JSON.parse(out) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/echo/followed?x=1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('answers other methods, and WebSocket handshakes, 403 with a page saying to use https', async () => {
    const reached = echo.requests;
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await request(p.port, '/echo/', { method, headers: { host: 'tools.example.test' }, body: method === 'POST' ? 'data' : undefined });
      assert.equal(r.status, 403, method);
      assert.equal(r.headers.location, undefined);
      assert.match(r.body, /403 HTTPS required.*https:\/\//s);
    }
    const json = await request(p.port, '/echo/', { method: 'POST', headers: { host: 'tools.example.test', accept: 'application/json' } });
    assert.equal((JSON.parse(json.body) as { error: { code: string } }).error.code, 'https_required');
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/echo/`);
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(0));
    });
    assert.equal(status, 403);
    assert.equal(echo.requests, reached, 'nothing reached the backend over plain http');
  });

  it('names no port for 443 (proxy.tls.redirectPort), and serves a trusted proxy that terminated TLS (X-Forwarded-Proto: https) as it is', async () => {
    const r = await request(behindLb.port, '/echo/x', { headers: { host: 'tools.example.test' } });
    assert.equal(r.headers.location, 'https://tools.example.test/echo/x');
    const viaLb = await request(behindLb.port, '/echo/lb', { method: 'POST', headers: { host: 'tools.example.test', 'x-forwarded-proto': 'https' }, body: 'x' });
    assert.equal(viaLb.status, 200);
    assert.equal((JSON.parse(viaLb.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
    // The same header from a client that is not a trusted proxy changes nothing.
    const forged = await request(p.port, '/echo/x', { headers: { host: 'tools.example.test', 'x-forwarded-proto': 'https' } });
    assert.equal(forged.status, 301);
  });

  it('sets Strict-Transport-Security with its max-age on every HTTPS answer, never on plain http', async () => {
    const relayed = await httpsRequest(p.tlsPort, '/echo/', { servername: 'tools.example.test', ca: pair.cert });
    assert.equal(relayed.status, 200);
    assert.equal(relayed.headers['strict-transport-security'], 'max-age=600');
    const page = await httpsRequest(p.tlsPort, '/nosuchtool/', { servername: 'tools.example.test', ca: pair.cert });
    assert.equal(page.status, 404);
    assert.equal(page.headers['strict-transport-security'], 'max-age=600');
    assert.equal((await request(p.port, '/echo/', { headers: { host: 'tools.example.test' } })).headers['strict-transport-security'], undefined);
    // Off unless asked for.
    const off = await httpsRequest(behindLb.tlsPort, '/echo/', { servername: 'tools.example.test', ca: pair.cert });
    assert.equal(off.headers['strict-transport-security'], undefined);
  });

  it('serves /.well-known/acme-challenge/<token> from proxy.tls.acmeWebroot, never redirected, and nothing else from it', async () => {
    const at = (tail: string, method = 'GET') => request(p.port, `/.well-known/acme-challenge/${tail}`, { method, headers: { host: 'tools.example.test' } });
    const got = await at(acme.token);
    assert.equal(got.status, 200);
    assert.equal(got.body, acme.content);
    assert.match(String(got.headers['content-type']), /^text\/plain/);
    assert.equal((await at(`${acme.token}?x=1`)).body, acme.content, 'a query string is not part of the token');
    const head = await at(acme.token, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(acme.content.length));
    assert.equal((await at(acme.token, 'POST')).status, 405);
    // Unknown tokens, other characters, traversal in every spelling, a link out of the directory, a directory.
    for (const tail of ['unknown-token', '../secret.txt', '..%2F..%2Fsecret.txt', '%2e%2e/secret.txt', 'a.b', '', 'linked', 'adir', `${acme.token}/x`]) {
      const r = await at(tail);
      assert.equal(r.status, 404, tail);
      assert.ok(!r.body.includes('outside the challenge'), tail);
      assert.equal(r.headers.location, undefined, tail);
    }
    // certbot's own check goes through curl just the same.
    assert.equal(await curl([`http://127.0.0.1:${p.port}/.well-known/acme-challenge/${acme.token}`]), acme.content);
  });

  it('without a webroot, passes the challenge path to the proxy unredirected; with HTTPS off, serves it and proxies the rest as before', async () => {
    const passed = await request(behindLb.port, `/.well-known/acme-challenge/${acme.token}`, { headers: { host: 'tools.example.test' } });
    assert.equal(passed.status, 404);
    assert.equal(passed.headers.location, undefined);
    const plainOnly: TestProxy = await startProxy(routes(), testConfig({ tls: { acmeWebroot: acme.dir } }));
    try {
      assert.equal((await request(plainOnly.port, `/.well-known/acme-challenge/${acme.token}`)).body, acme.content);
      const r = await request(plainOnly.port, '/echo/plain', { method: 'POST', body: 'x' });
      assert.equal(r.status, 200);
      assert.equal(plainOnly.proxy.tls, null);
    } finally {
      await plainOnly.close();
    }
  });
});
