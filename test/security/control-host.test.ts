import assert from 'node:assert/strict';
import os from 'node:os';
import { parseHost } from '../../src/net/host-names';
import { rawRequest } from '../proxy/helpers';
import { callApi } from '../support/api';
import { startBackend, type Backend } from '../support/backend';
import { startInProcess, type InProcess } from '../support/in-process';
import { metricValue, scrape } from '../support/metrics';
import { waitFor } from '../support/wait';

// A page of a rebinding DNS name (evil.example, resolving to 127.0.0.1 once the page has loaded) reads the
// control port as its own origin; its requests carry its own name as Host. The control port answers only
// the names it knows, and any IP address.

const ADMIN = 'control-host-admin-0123456789abcdef';
const ROUTES = ['/', '/status.json', '/metrics', '/healthz', '/readyz', '/v1/tools'];

/** One request written byte for byte: a Host line as given, or none with `host` null (HTTP/1.0). */
async function send(port: number, host: string | null, path = '/status.json', extra = ''): Promise<{ status: number; body: string }> {
  const head = host === null ? `GET ${path} HTTP/1.0\r\n` : `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n`;
  const text = await rawRequest(port, `${head}Authorization: Bearer ${ADMIN}\r\nConnection: close\r\n${extra}\r\n`);
  return { status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

function start(allowedHosts: string[]): Promise<InProcess> {
  return startInProcess({ adminToken: ADMIN, roles: { proxy: true, registry: true }, configure: (c) => Object.assign(c.control, { allowedHosts }) });
}

describe('control port: the Host names it answers to', function () {
  this.timeout(30_000);
  let sb: InProcess;
  let tool: Backend;
  before(async () => {
    sb = await start(['switchboard.internal', 'metrics.internal:9100']);
    tool = await startBackend('tool');
  });
  after(async () => {
    await sb?.stop();
    await tool?.close();
  });

  it('answers its address, any IP address, localhost, the machine name and the configured names, with a port or without', async () => {
    const port = sb.controlPort;
    const hosts = [
      `127.0.0.1:${port}`,
      '127.0.0.1',
      `[::1]:${port}`,
      '10.20.30.40:9090', // a scraper through NAT or a service address
      '203.0.113.9',
      `localhost:${port}`,
      'LocalHost.',
      'switchboard.internal',
      'switchboard.internal:443',
      'metrics.internal:9100',
    ];
    if (parseHost(os.hostname())) hosts.push(os.hostname(), `${os.hostname()}:${port}`);
    for (const host of hosts) {
      for (const path of ['/status.json', '/metrics']) assert.equal((await send(port, host, path)).status, 200, `Host: ${host} ${path}`);
    }
    assert.equal((await send(port, null)).status, 200, 'HTTP/1.0 without a Host');
  });

  it('refuses any other name with 421 and a JSON error naming the Host, on every route', async () => {
    const port = sb.controlPort;
    const before = metricValue(await scrape(sb), 'switchboard_control_refused_total', { reason: 'host' });
    const hosts = [
      'evil.example',
      `evil.example:${port}`,
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      'metrics.internal', // configured with a port: that port only
      'metrics.internal:9101',
      'switchboard.internal.evil.example',
      'not a host',
    ];
    for (const host of hosts) {
      for (const path of ROUTES) {
        const r = await send(port, host, path);
        assert.equal(r.status, 421, `Host: ${host} ${path}: ${r.body.slice(0, 200)}`);
        const error = JSON.parse(r.body).error;
        assert.equal(error.code, 'unknown_host');
        assert.equal(error.host, host);
        assert.ok(error.message.includes(`"${host}"`), error.message);
      }
    }
    const after = metricValue(await scrape(sb), 'switchboard_control_refused_total', { reason: 'host' });
    assert.equal(after - before, hosts.length * ROUTES.length);
  });

  it('refuses a heartbeat with an unknown Host before the fast path, and stores nothing', async () => {
    const body = JSON.stringify({ url: tool.url });
    for (const type of ['application/json', 'application/json; charset=UTF-8']) {
      const text = await rawRequest(
        sb.controlPort,
        `PUT /v1/tools/rebound/backends/b1 HTTP/1.1\r\nHost: evil.example:${sb.controlPort}\r\nAuthorization: Bearer ${ADMIN}\r\n` +
          `Content-Type: ${type}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      assert.match(text, /^HTTP\/1\.1 421 /, `${type}: ${text.slice(0, 200)}`);
    }
    assert.equal((await callApi(sb.control, ADMIN, 'GET', '/v1/tools/rebound')).status, 404, 'nothing was stored');
    const ok = await callApi(sb.control, ADMIN, 'PUT', '/v1/tools/rebound/backends/b1', { url: tool.url });
    assert.equal(ok.status, 200, 'the same heartbeat by address');
  });

  it('leaves the proxy port alone: it routes by any Host', async () => {
    const plain = await startBackend('plain');
    try {
      assert.equal((await callApi(sb.control, ADMIN, 'PUT', '/v1/tools/plain/backends/b1', { url: plain.url })).status, 200);
      await waitFor('the proxy to route the tool', () => sb.feed?.current()?.lookup('plain'));
      const text = await rawRequest(sb.proxyPort!, 'GET /plain/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 200 /);
    } finally {
      await plain.close();
    }
  });
});

describe('control port: control.allowedHosts', function () {
  this.timeout(30_000);

  it('"*" answers every Host', async () => {
    const sb = await start(['*']);
    try {
      for (const host of ['evil.example', 'anything.at.all:1']) assert.equal((await send(sb.controlPort, host)).status, 200, host);
    } finally {
      await sb.stop();
    }
  });

  it('an entry that is not a host stops the start with the key named', async () => {
    for (const bad of [['http://a.example'], ['a.example:99999'], ['a b'], 'a.example']) {
      await assert.rejects(start(bad as string[]), /control\.allowedHosts/, JSON.stringify(bad));
    }
  });
});
