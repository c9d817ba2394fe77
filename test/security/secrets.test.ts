import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { MemoryStore } from '../../src/registry/memory-store';
import { freePort } from '../support/redis-server';
import { ADMIN_TOKEN, Client, appTarget, type Reply } from './support';
import { sleep } from '../support/wait';
import { deadPort } from '../support/backend';
import { capturingLogger } from '../support/logs';

/**
 * Secrets: after representative flows (admin and tool tokens in headers and query strings, refusals,
 * errors, proxying, discovery reports, failing reports), no token or token secret appears in any log
 * line, in /metrics, in the status page, or in any page or error the processes answered. The one place a
 * token may appear is the answer that issues it.
 */

type Sb = Awaited<ReturnType<typeof appTarget>>;

function rawGet(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.setTimeout(3000, () => s.destroy());
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
  });
}

describe('security: no token in logs, metrics, status or error pages', function () {
  this.timeout(30_000);
  const log = capturingLogger();
  /** Everything answered to a client, except the issuing answers (which must hold the token). */
  const answers: string[] = [];
  const issued: string[] = [];
  let store: MemoryStore;
  let serve: Sb;
  let proxyOnly: Sb;
  let api: Client;
  let backendServer: http.Server;
  let backendPort = 0;
  let listenerServer: net.Server;
  const listenerSockets = new Set<net.Socket>();

  const keep = (r: Reply) => {
    answers.push(`${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
    return r;
  };

  before(async () => {
    store = new MemoryStore();
    // A backend that echoes nothing of the request: the check is about switchboard's own output.
    backendServer = http.createServer((req, res) => {
      if (req.url?.includes('/boom')) return req.socket.destroy();
      res.end('backend ok');
    });
    await new Promise<void>((r) => backendServer.listen(0, '127.0.0.1', () => r()));
    backendPort = (backendServer.address() as net.AddressInfo).port;
    // A one-port range on a free port: the discovery flow listens on what it hands out.
    const free = await freePort();
    serve = await appTarget(store, {
      proxy: true,
      logger: log.logger,
      overrides: { proxy: { accessLog: true }, log: { level: 'debug' }, ports: { min: free, max: free } },
    });
    api = new Client(serve.base, 2);
  });

  after(async () => {
    api?.close();
    await proxyOnly?.stop();
    await serve?.stop();
    await store?.close();
    backendServer?.closeAllConnections();
    await new Promise<void>((r) => (backendServer ? backendServer.close(() => r()) : r()));
    for (const s of listenerSockets) s.destroy();
    await new Promise<void>((r) => (listenerServer ? listenerServer.close(() => r()) : r()));
  });

  // The flows run once, before the checks, so a check run alone (--grep) still has everything to check.
  before('runs the flows', async () => {
    // Tokens: issued by the admin, one revoked.
    for (const tool of ['alpha', 'beta', 'alpha']) {
      const r = await api.call('POST', `/v1/tools/${tool}/tokens`);
      assert.equal(r.status, 201, r.text);
      issued.push(r.body.token);
    }
    const [own, other, revoked] = issued;
    const revokedId = revoked.slice(4, 16);
    keep(await api.call('DELETE', `/v1/tools/alpha/tokens/${revokedId}`));

    // The backend's port is outside the range: the admin's registration assigns it to alpha, whose token
    // may register it from then on.
    keep(await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: `http://127.0.0.1:${backendPort}` } }));
    // Heartbeats with the tool token: fast path, with the token also in the query, with a bad body.
    keep(await api.call('PUT', '/v1/tools/alpha/backends/a1', { token: own, json: { url: `http://127.0.0.1:${backendPort}` } }));
    keep(await api.send({ method: 'PUT', path: `/v1/tools/alpha/backends/a1?token=${own}&access_token=${ADMIN_TOKEN}`, headers: { authorization: `Bearer ${own}`, 'content-type': 'application/json' }, body: `{"url":"http://127.0.0.1:${backendPort}"}` }));
    keep(await api.send({ method: 'PUT', path: '/v1/tools/alpha/backends/a2', headers: { authorization: `Bearer ${own}`, 'content-type': 'application/json' }, body: '{"url":' }));
    keep(await api.send({ method: 'PUT', path: '/v1/tools/alpha/backends/a2', headers: { authorization: `Bearer ${own}`, 'content-type': 'text/plain' }, body: own }));
    keep(await api.call('PUT', '/v1/tools/alpha/backends/a3', { token: own, json: { url: `http://127.0.0.1:${backendPort}`, clientVersion: 'x', token: own } }));
    // Refusals: another tool, revoked, malformed, admin token mangled, tokens only in the URL.
    keep(await api.call('PUT', '/v1/tools/alpha/backends/b1', { token: other, json: { url: 'http://127.0.0.1:20001' } }));
    keep(await api.call('GET', '/v1/tools/alpha', { token: revoked }));
    keep(await api.call('GET', '/v1/tools', { token: `${ADMIN_TOKEN}x` }));
    keep(await api.send({ method: 'GET', path: '/v1/tools', headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` } }));
    keep(await api.send({ method: 'GET', path: `/v1/tools?access_token=${ADMIN_TOKEN}`, headers: {} }));
    keep(await api.call('GET', `/v1/nowhere?token=${own}`));
    keep(await api.call('DELETE', `/v1/tools/alpha/tokens/${own}`));
    keep(await api.call('DELETE', `/v1/tools/alpha/tokens/${revokedId}?t=${own}`));
    keep(await api.call('POST', '/v1/ports', { token: own, json: { tool: 'alpha', host: '127.0.0.1', token: own } }));
    keep(await api.call('POST', '/v1/ports', { token: own, json: { tool: 'alpha', host: '127.0.0.1' } }));

    // Proxying with tokens in headers, cookies and query strings: success, unknown tools, a dying backend.
    const proxy = new Client(`http://127.0.0.1:${serve.proxyPort}`, 2);
    try {
      const headers = { authorization: `Bearer ${own}`, cookie: `token=${ADMIN_TOKEN}`, 'x-api-key': own, accept: 'application/json' };
      keep(await proxy.send({ method: 'GET', path: `/alpha/?token=${own}&access_token=${ADMIN_TOKEN}`, headers }));
      keep(await proxy.send({ method: 'GET', path: `/alpha/boom?token=${own}`, headers }));
      keep(await proxy.send({ method: 'GET', path: `/alpha/boom?token=${own}`, headers: { ...headers, accept: 'text/html' } }));
      keep(await proxy.send({ method: 'GET', path: `/nosuchtool/?token=${own}`, headers }));
      keep(await proxy.send({ method: 'GET', path: `/nosuchtool/?token=${own}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
      // A redirect of /alpha?q to /alpha/?q hands the client its own query back; it is no page, and the
      // log check below still covers it.
      const redirect = await proxy.send({ method: 'GET', path: `/alpha?token=${own}`, headers });
      assert.equal(redirect.status, 301);
      keep(await proxy.send({ method: 'POST', path: `/alpha/?token=${own}`, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ token: own }) }));
    } finally {
      proxy.close();
    }
    answers.push(await rawGet(serve.proxyPort!, `GET /alpha/?token=${own} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\nAuthorization: Bearer ${own}\r\n\r\n`));
    answers.push(await rawGet(serve.proxyPort!, `GET /nosuchtool/?token=${own} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${own}\r\n\r\n`));
    answers.push(await rawGet(serve.proxyPort!, `GET /alpha/?token=${own} HTTP/1.1\r\nAuthorization: Bearer ${own}\r\n\r\n`));

    // Fallback discovery in a proxy-only process reporting with a tool token, to a registry that is
    // not there: the failure is logged.
    listenerServer = net.createServer((s) => {
      listenerSockets.add(s);
      s.on('close', () => listenerSockets.delete(s));
      s.on('error', () => undefined);
      s.end();
    });
    const held = await api.call('POST', '/v1/ports', { json: { tool: 'gamma', host: '127.0.0.1' } });
    assert.equal(held.status, 200, held.text);
    await new Promise<void>((r) => listenerServer.listen(held.body.port, '127.0.0.1', () => r()));
    const gammaToken = keep(await api.call('POST', '/v1/tools/gamma/tokens'));
    answers.pop();
    issued.push(gammaToken.body.token);
    proxyOnly = await appTarget(store, {
      proxy: true,
      registry: false,
      logger: log.logger,
      overrides: {
        proxy: { accessLog: true },
        discovery: { registry: `http://127.0.0.1:${await deadPort()}`, token: gammaToken.body.token },
        log: { level: 'debug' },
      },
    });
    const p2 = new Client(`http://127.0.0.1:${proxyOnly.proxyPort}`, 1);
    try {
      keep(await p2.send({ method: 'GET', path: `/gamma/?token=${gammaToken.body.token}`, headers: { authorization: `Bearer ${gammaToken.body.token}` } }));
    } finally {
      p2.close();
    }
    // The report happens after the answer: give it time to fail and be logged.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !log.raw.some((l) => l.includes('discovery.report_failed'))) await sleep(50);
    assert.ok(log.raw.some((l) => l.includes('discovery.report_failed')), 'the failing discovery report was logged');

    // The operator surfaces, read last so they reflect all of the above.
    for (const path of ['/metrics', '/healthz', '/readyz', '/', '/status.json']) {
      const r = await api.send({ method: 'GET', path, headers: {} });
      answers.push(`${path} ${r.status} ${r.text}`);
    }
    assert.ok(log.raw.length > 20, `only ${log.raw.length} log lines captured`);
    assert.ok(log.raw.some((l) => l.includes('"event":"access"')), 'the access log was on');
  });

  it('no token or token secret appears in any log line', () => {
    const secrets = [ADMIN_TOKEN, ...issued, ...issued.map((t) => t.slice(17))];
    // Something to check: the flows ran and logged.
    assert.ok(issued.length > 0, 'tokens were issued');
    assert.ok(log.raw.length > 20 && log.raw.some((l) => l.includes('"event":"access"')), `only ${log.raw.length} log lines captured`);
    for (const line of log.raw) for (const s of secrets) assert.ok(!line.includes(s), `a token in a log line: ${line.slice(0, 400)}`);
  });

  it('no token or token secret appears in metrics, status, health or any page or error answered', () => {
    const secrets = [ADMIN_TOKEN, ...issued, ...issued.map((t) => t.slice(17))];
    assert.ok(issued.length > 0, 'tokens were issued');
    assert.ok(answers.some((a) => a.startsWith('/metrics 200')), 'metrics were read');
    assert.ok(answers.some((a) => /^\/ 200 /.test(a)), 'the status page was read');
    for (const a of answers) for (const s of secrets) assert.ok(!a.includes(s), `a token in an answer: ${a.slice(0, 400)}`);
  });
});
