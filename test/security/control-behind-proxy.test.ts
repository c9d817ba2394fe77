import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/registry/memory-store';
import { request, rawRequest, type Reply } from '../proxy/helpers';
import { callApi } from '../support/api';
import { startBackend, type Backend } from '../support/backend';
import { startInProcess, type InProcess } from '../support/in-process';
import { metricValue, scrape } from '../support/metrics';
import { waitFor } from '../support/wait';

// A backend URL may name a control port: a registry knows only its own ports, not those of the proxies of
// a split deployment or of another deployment. The public port must not become a way into it.

const ADMIN = 'control-behind-proxy-admin-0123456789';
const DOMAIN = 'tools.test';
const CONTROL_PATHS = ['/status.json', '/metrics', '/', '/healthz', '/readyz', '/v1/tools'];

async function register(sb: InProcess, tool: string, url: string): Promise<void> {
  const r = await callApi(sb.control, ADMIN, 'PUT', `/v1/tools/${tool}/backends/b1`, { url });
  assert.equal(r.status, 200, `${tool} -> ${url}: ${JSON.stringify(r.body)}`);
}

/** Waits until the proxy routes `tool` (anything but the 404 of a tool it does not know yet). */
function routed(proxyPort: number, via: (tool: string) => { path: string; host?: string }, tool: string): Promise<Reply> {
  const { path, host } = via(tool);
  return waitFor(`a route to ${tool}`, async () => {
    const r = await request(proxyPort, path, { headers: { accept: 'application/json', ...(host ? { host } : {}) } });
    return r.status !== 404 && r;
  });
}

describe('control ports refuse what a switchboard proxy forwarded', function () {
  this.timeout(30_000);
  let front: InProcess;
  let other: InProcess;
  let tool: Backend;

  before(async () => {
    // Another process's control port, answering any Host: only the proxy's mark can refuse what follows.
    other = await startInProcess({ adminToken: ADMIN, configure: (c) => Object.assign(c.control, { allowedHosts: ['*'] }) });
    front = await startInProcess({ adminToken: ADMIN, overrides: { domain: DOMAIN } });
    tool = await startBackend('tool');
    await register(front, 'ctl', other.control);
    await routed(front.proxyPort!, (t) => ({ path: '/healthz', host: `${t}.${DOMAIN}` }), 'ctl');
  });
  after(async () => {
    await front?.stop();
    await other?.stop();
    await tool?.close();
  });

  const viaProxy = (path: string, opts: Parameters<typeof request>[2] = {}) =>
    request(front.proxyPort!, path, { ...opts, headers: { host: `ctl.${DOMAIN}`, authorization: `Bearer ${ADMIN}`, ...opts.headers } });

  it('answers 403 proxied_request on every route through the public port, and the same requests sent directly as before', async () => {
    const before = metricValue(await scrape(other), 'switchboard_control_refused_total', { reason: 'proxied' });
    for (const path of CONTROL_PATHS) {
      const r = await viaProxy(path);
      assert.equal(r.status, 403, `${path} through the proxy: ${r.body.slice(0, 200)}`);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(JSON.parse(r.body).error.code, 'proxied_request');
      assert.doesNotMatch(r.body, new RegExp(`${other.proxyPort}|${front.controlPort}`), 'no address or port of the table');
      const direct = await request(other.controlPort, path, { headers: { host: `ctl.${DOMAIN}`, authorization: `Bearer ${ADMIN}` } });
      assert.equal(direct.status, 200, `${path} sent directly: ${direct.body.slice(0, 200)}`);
    }
    const after = metricValue(await scrape(other), 'switchboard_control_refused_total', { reason: 'proxied' });
    assert.equal(after - before, CONTROL_PATHS.length);
  });

  it('refuses a heartbeat and every other API write forwarded to a registry (fast path included) and stores nothing', async () => {
    const body = JSON.stringify({ url: tool.url });
    const json = { 'content-type': 'application/json' };
    const writes: Array<[string, string, string | undefined, Record<string, string>]> = [
      ['PUT', '/v1/tools/intruder/backends/b1', body, json], // the heartbeat fast path's request
      ['PUT', '/v1/tools/intruder/backends/b1', body, { 'content-type': 'application/json; charset=UTF-8' }], // left to express
      ['POST', '/v1/ports', JSON.stringify({ tool: 'intruder', host: '127.0.0.1' }), json],
      ['POST', '/v1/tools/intruder/tokens', undefined, {}],
    ];
    for (const [method, path, b, headers] of writes) {
      const r = await viaProxy(path, { method, body: b, headers });
      assert.equal(r.status, 403, `${method} ${path}: ${r.body.slice(0, 200)}`);
      assert.equal(JSON.parse(r.body).error.code, 'proxied_request');
    }
    assert.equal((await callApi(other.control, ADMIN, 'GET', '/v1/tools/intruder')).status, 404, 'nothing was stored');
  });

  it('cannot be avoided by the client: a Connection list naming the mark, or the mark sent with another value', async () => {
    for (const headers of [{ connection: 'x-switchboard-forwarded' }, { 'x-switchboard-forwarded': '0' }, { 'x-switchboard-forwarded': '' }]) {
      const r = await viaProxy('/status.json', { headers });
      assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.body.slice(0, 200)}`);
    }
  });

  it('leaves a tool backend the mark and nothing else: it reaches the backend set to 1', async () => {
    await register(front, 'plain', tool.url);
    const r = await routed(front.proxyPort!, (t) => ({ path: `/${t}/x` }), 'plain');
    assert.equal(r.status, 200);
    assert.equal(tool.recent[tool.recent.length - 1].headers['x-switchboard-forwarded'], '1');
  });
});

describe('a proxy never connects to its own ports (split deployment)', function () {
  this.timeout(30_000);
  const store = new MemoryStore();
  let registry: InProcess;
  let proxy: InProcess;

  before(async () => {
    // The registry shares the store but not the proxy's ports: it accepts URLs naming them.
    registry = await startInProcess({ adminToken: ADMIN, roles: { proxy: false, registry: true }, store });
    proxy = await startInProcess({ adminToken: ADMIN, roles: { proxy: true, registry: false }, store });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await store.close();
  });

  it('answers 502 for backend URLs naming its proxy or control port, by address or by name, and no request reaches either', async () => {
    const byAddress: Record<string, string> = {
      'own-control': `http://127.0.0.1:${proxy.controlPort}`,
      'own-proxy': `http://127.0.0.1:${proxy.proxyPort}`,
    };
    const byName: Record<string, string> = {
      'own-control-name': `http://localhost:${proxy.controlPort}`,
      'own-proxy-name': `http://localhost:${proxy.proxyPort}`,
    };
    const targets = { ...byAddress, ...byName };
    let before = '';
    // A name and its address are one host to the registry: the tools naming the ports by name can register
    // only once the tools holding them by address are gone.
    for (const round of [byAddress, byName]) {
      for (const [name, url] of Object.entries(round)) await register(registry, name, url);
      await waitFor('the proxy to route every tool', () => Object.keys(round).every((t) => proxy.feed?.current()?.lookup(t)?.backends.length));
      before ||= await scrape(proxy);
      for (const name of Object.keys(round)) {
        const r = await request(proxy.proxyPort!, `/${name}/status.json`, { headers: { accept: 'application/json' } });
        assert.equal(r.status, 502, `${name}: ${r.body.slice(0, 200)}`);
        assert.equal(JSON.parse(r.body).error.code, 'bad_gateway');
      }
      if (round !== byAddress) continue;
      for (const [name, url] of Object.entries(round)) {
        assert.equal((await callApi(registry.control, ADMIN, 'DELETE', `/v1/tools/${name}/backends/b1`)).status, 204);
        assert.equal((await callApi(registry.control, ADMIN, 'DELETE', `/v1/ports/127.0.0.1/${new URL(url).port}`)).status, 204);
      }
    }
    const upgrade = await rawRequest(
      proxy.proxyPort!,
      'GET /own-proxy-name/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(upgrade, /^HTTP\/1\.1 502 /, 'a WebSocket handshake to its own port');
    const after = await scrape(proxy);
    // A counter without a sample yet (no request answered) is 0.
    const value = (text: string, name: string, labels: Record<string, string>) => metricValue(text, name, labels) || 0;
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    assert.equal(delta('switchboard_control_refused_total', { reason: 'proxied' }), 0, 'no forwarded request reached its control port');
    // Every request the proxy answered is one the test sent: none came back to it through a loop.
    assert.equal(delta('switchboard_proxy_requests_total'), Object.keys(targets).length + 1);
    assert.ok(delta('switchboard_proxy_errors_total', { kind: 'refused' }) >= Object.keys(targets).length + 1);
  });
});
