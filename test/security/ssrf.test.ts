import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import net from 'node:net';
import { ADDRESS_NOT_ALLOWED, ConnectGuard } from '../../src/net/connect-guard';
import { createRouteBackend } from '../../src/table/route-backend';
import { RouteTable } from '../../src/table/route-table';
import { MemoryStore } from '../../src/registry/memory-store';
import { canonicalHost } from '../../src/net/host-names';
import { startApi, type Api } from '../registry/harness';
import { StaticRoutes, backend, rawRequest, request, startProxy, tableOf, testConfig, type TestProxy } from '../proxy/helpers';
import { waitFor } from '../support/wait';
import { capturingLogger } from '../support/logs';
import { metricValue } from '../support/metrics';

/**
 * SSRF: backend addresses outside allowedNetworks are refused at registration in every spelling, and
 * again when the proxy connects (DNS may answer differently later; the store may hold older entries).
 * Stand-ins for forbidden addresses are real listeners on 127.0.0.2, outside an allowedNetworks of
 * 127.0.0.1/32, so "the proxy never connected there" is counted, not assumed.
 */

/** Test DNS: what each name resolves to right now. */
const dns = new Map<string, string[]>();
const registryLookup = async (name: string): Promise<string[]> => {
  const a = dns.get(name);
  if (!a) throw Object.assign(new Error(`no such name ${name}`), { code: 'ENOTFOUND' });
  return a;
};
/** The same answers in dns.lookup's shape, for the proxy's agents. */
const proxyLookup: LookupFunction = (hostname, options, callback) => {
  const list = dns.get(hostname);
  const cb = callback as unknown as (err: NodeJS.ErrnoException | null, a: unknown, f?: number) => void;
  if (!list) return cb(Object.assign(new Error(`no such name ${hostname}`), { code: 'ENOTFOUND' }), options.all ? [] : '', 0);
  const answers = list.map((address) => ({ address, family: net.isIP(address) }));
  if (options.all) cb(null, answers);
  else cb(null, answers[0].address, answers[0].family);
};

interface Listener {
  server: http.Server;
  port: number;
  connections: number;
  requests: number;
  close(): Promise<void>;
}

async function listenOn(host: string, handler: http.RequestListener, port = 0): Promise<Listener> {
  const server = http.createServer(handler);
  const l: Listener = { server, port: 0, connections: 0, requests: 0, close: async () => undefined };
  server.on('connection', () => l.connections++);
  server.on('request', () => l.requests++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  l.port = (server.address() as AddressInfo).port;
  l.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return l;
}

const REFUSED_URLS: Array<[string, string]> = [
  ['http://169.254.169.254', 'url_not_allowed'],
  ['http://169.254.169.254:80', 'url_not_allowed'],
  ['http://[::ffff:169.254.169.254]', 'url_not_allowed'],
  ['http://[::ffff:a9fe:a9fe]', 'url_not_allowed'],
  ['http://[0:0:0:0:0:ffff:169.254.169.254]', 'url_not_allowed'],
  ['http://2852039166', 'url_not_allowed'],
  ['http://0251.0376.0251.0376', 'url_not_allowed'],
  ['http://0xa9.0xfe.0xa9.0xfe', 'url_not_allowed'],
  ['http://0xa9fea9fe', 'url_not_allowed'],
  ['http://169.254.43518', 'url_not_allowed'],
  ['http://169.254.169.254.', 'url_not_allowed'],
  ['http://%31%36%39.254.169.254', 'url_not_allowed'],
  ['http://[fe80::1]', 'url_not_allowed'],
  ['http://[::]', 'url_not_allowed'],
  ['http://0', 'url_not_allowed'],
  ['http://0.0.0.0:20001', 'url_not_allowed'],
  ['http://224.0.0.1', 'url_not_allowed'],
  ['http://[::169.254.169.254]', 'url_not_allowed'],
  ['http://[64:ff9b::a9fe:a9fe]', 'url_not_allowed'],
  ['http://8.8.8.8', 'url_not_allowed'],
  // Loopback in other spellings, with an allowedNetworks that leaves loopback out.
  ['http://127.1:20001', 'url_not_allowed'],
  ['http://0x7f000001:20001', 'url_not_allowed'],
  ['http://2130706433:20001', 'url_not_allowed'],
  ['http://[::1]:20001', 'url_not_allowed'],
  ['http://[::ffff:127.0.0.1]:20001', 'url_not_allowed'],
  // Names: resolved, and every address must pass.
  ['http://metadata.test', 'url_not_allowed'],
  ['http://mixed.test:20001', 'url_not_allowed'],
  ['http://mapped.test:20001', 'url_not_allowed'],
  ['http://link6.test:20001', 'url_not_allowed'],
  ['http://zero.test:20001', 'url_not_allowed'],
  ['http://METADATA.test.', 'url_not_allowed'],
  ['http://nxdomain.test:20001', 'unresolvable_host'],
  // Spellings the URL parser would quietly rewrite.
  ['http://１６９.２５４.１６９.２５４', 'invalid_url'],
  ['http://169.254.169.254\t', 'invalid_url'],
  ['http://10.0.0.1\\@169.254.169.254', 'invalid_url'],
  ['http://10.0.0.1@169.254.169.254', 'invalid_url'],
  ['http://169.254.169.254#@10.0.0.1', 'invalid_url'],
  ['gopher://10.0.0.1:70', 'unsupported_scheme'],
  ['file:///etc/passwd', 'unsupported_scheme'],
];

describe('security: SSRF at registration', function () {
  this.timeout(20_000);
  let api: Api;
  let store: MemoryStore;

  before(async () => {
    dns.set('metadata.test', ['169.254.169.254']);
    dns.set('mixed.test', ['10.0.0.7', '169.254.169.254']);
    dns.set('mapped.test', ['::ffff:169.254.169.254']);
    dns.set('link6.test', ['fe80::1']);
    dns.set('zero.test', ['0.0.0.0']);
    dns.set('fine.test', ['10.0.0.8']);
    store = new MemoryStore();
    api = await startApi({ store, lookup: registryLookup, overrides: { allowedNetworks: ['10.0.0.0/8'] } });
  });

  after(async () => {
    await api?.close();
    await store?.close();
  });

  for (const [url, code] of REFUSED_URLS) {
    it(`refuses ${JSON.stringify(url)} (400 ${code}, field url), storing nothing`, async () => {
      const before = await store.snapshot();
      const r = await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url } });
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.body.error.field, 'url');
      assert.equal(r.body.error.code, code, r.text);
      assert.deepEqual(await store.snapshot(), before);
    });
  }

  it('accepts an allowed address and a name that resolves inside the networks (the refusals are specific)', async () => {
    assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: 'http://10.0.0.9:20001' } })).status, 200);
    assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a2', { json: { url: 'http://fine.test:20001' } })).status, 200);
  });

  for (const host of ['169.254.169.254', '2852039166', '0251.0376.0251.0376', '0xa9fea9fe', '::ffff:169.254.169.254', 'metadata.test', 'mixed.test', '127.1', '0x7f000001']) {
    it(`refuses a port assignment on host ${JSON.stringify(host)} (400, field host)`, async () => {
      const r = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host } });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.field, 'host');
    });
  }
});

describe('security: numeric host spellings are one host', function () {
  this.timeout(20_000);
  let api: Api;
  let store: MemoryStore;

  before(async () => {
    store = new MemoryStore();
    // Names must never be asked of DNS here: a numeric spelling is an address.
    api = await startApi({ store, lookup: async (n) => { throw new Error(`unexpected lookup of ${n}`); }, overrides: { ports: { min: 47000, max: 47009 } } });
  });

  after(async () => {
    await api?.close();
    await store?.close();
  });

  it('canonicalHost reads numeric spellings as the IPv4 address they are', () => {
    for (const s of ['127.1', '2130706433', '0x7f000001', '0177.0.0.1', '0x7f.1', '127.0.0.1.', '017700000001']) assert.equal(canonicalHost(s), '127.0.0.1', s);
    assert.equal(canonicalHost('0251.0376.0251.0376'), '169.254.169.254');
    assert.equal(canonicalHost('0x'), '0.0.0.0', 'a bare 0x is zero to URL parsers');
    for (const s of ['1.2.3.4.5', '256.1.1.1', '4294967296', 'cafe.0x1', '1.2.3.-4']) assert.equal(canonicalHost(s), null, s);
    assert.equal(canonicalHost('host1.example'), 'host1.example');
  });

  it('a port held as 127.0.0.1 is not handed to another tool as 127.1', async () => {
    const a = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
    assert.equal(a.status, 200, a.text);
    for (const host of ['127.1', '2130706433', '0x7f000001', '0177.0.0.1']) {
      const b = await api.call('POST', '/v1/ports', { json: { tool: 'beta', host } });
      assert.equal(b.status, 200, b.text);
      assert.equal(b.body.host, '127.0.0.1');
      assert.notEqual(b.body.port, a.body.port, `beta got alpha's port through ${host}`);
    }
    const ports = (await store.listAssignments()).map((x) => `${x.host}:${x.port}`);
    assert.equal(new Set(ports).size, ports.length);
    assert.equal(ports.length, 2, `one assignment per tool: ${ports.join(', ')}`);
  });

  it('a heartbeat for 127.1:<port> meets the assignment of 127.0.0.1:<port>', async () => {
    const held = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
    const r = await api.call('PUT', '/v1/tools/beta/backends/b1', { json: { url: `http://127.1:${held.body.port}` } });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.error.code, 'port_conflict');
  });

  it('releases 127.0.0.1:<port> when asked as 127.1', async () => {
    const held = await api.call('POST', '/v1/ports', { json: { tool: 'gamma', host: '127.0.0.1' } });
    assert.equal((await api.call('DELETE', `/v1/ports/127.1/${held.body.port}`)).status, 204);
    assert.equal(await store.getAssignment('127.0.0.1', held.body.port), null);
  });
});

describe('security: SSRF at connect time (the proxy checks again)', function () {
  this.timeout(20_000);
  let allowed: Listener; // 127.0.0.1: inside allowedNetworks
  let forbidden: Listener; // 127.0.0.2, same port: outside
  let proxy: TestProxy;
  let routes: StaticRoutes;
  let log: ReturnType<typeof capturingLogger>;
  let api: Api;
  let store: MemoryStore;

  const networks = ['127.0.0.1/32', '::1/128'];

  before(async () => {
    // Connection: close: every request needs a new connection, so every one goes through the lookup.
    allowed = await listenOn('127.0.0.1', (_req, res) => res.writeHead(200, { connection: 'close' }).end('allowed'));
    forbidden = await listenOn('127.0.0.2', (_req, res) => res.writeHead(200, { connection: 'close' }).end('forbidden'), allowed.port);
    routes = new StaticRoutes();
    log = capturingLogger();
    proxy = await startProxy(routes, testConfig({}, { allowedNetworks: networks }), { lookup: proxyLookup, logger: log.logger });
    store = new MemoryStore();
    api = await startApi({ store, lookup: registryLookup, overrides: { allowedNetworks: networks } });
  });

  after(async () => {
    await api?.close();
    await store?.close();
    await proxy?.close();
    await allowed?.close();
    await forbidden?.close();
  });

  beforeEach(() => {
    allowed.connections = forbidden.connections = 0;
    allowed.requests = forbidden.requests = 0;
    log.raw.length = 0;
  });

  /** The table as the registry wrote it, as a proxy's feed would load it. */
  async function loadTable(): Promise<void> {
    routes.table = RouteTable.fromSnapshot(await store.snapshot());
  }

  function refusals(): number {
    return log.raw.filter((l) => l.includes(ADDRESS_NOT_ALLOWED)).length;
  }

  it('a name that resolved inside the networks at registration but to another address later is not connected', async () => {
    dns.set('rebind.test', ['127.0.0.1']);
    const r = await api.call('PUT', '/v1/tools/rebind/backends/r1', { json: { url: `http://rebind.test:${allowed.port}` } });
    assert.equal(r.status, 200, r.text);
    await loadTable();

    const first = await request(proxy.port, '/rebind/');
    assert.equal(first.status, 200);
    assert.equal(first.body, 'allowed');

    dns.set('rebind.test', ['127.0.0.2']);
    const second = await request(proxy.port, '/rebind/', { headers: { accept: 'application/json' } });
    assert.equal(second.status, 502, second.body);
    assert.equal(JSON.parse(second.body).error.code, 'bad_gateway');
    assert.equal(forbidden.connections, 0, 'the proxy connected to the rebound address');
    await waitFor('a logged refusal', () => refusals() > 0, 2000, 10);
  });

  for (const [name, answers] of [
    ['link-local', ['169.254.169.254']],
    ['IPv4-mapped link-local', ['::ffff:169.254.169.254']],
    ['one bad address among good ones', ['127.0.0.1', '127.0.0.2']],
    ['IPv6 link-local', ['fe80::1']],
    ['the unspecified address', ['0.0.0.0']],
  ] as Array<[string, string[]]>) {
    it(`a name now resolving to ${name} (${answers.join(', ')}) is refused before connecting`, async () => {
      dns.set('rebind.test', ['127.0.0.1']);
      routes.table = tableOf([backend('rebind', 'r1', `http://rebind.test:${allowed.port}`)]);
      assert.equal((await request(proxy.port, '/rebind/')).status, 200);
      dns.set('rebind.test', answers);
      const r = await request(proxy.port, '/rebind/');
      assert.equal(r.status, 502);
      // No listener can stand at most of these addresses, so "no connection to the forbidden listener"
      // would prove nothing: what shows the proxy never tried one is that every failure it logged is its
      // own lookup's refusal (a connection tried fails otherwise: refused, unreachable, timed out). 0.0.0.0
      // would reach the allowed listener on this host; 127.0.0.2 is the forbidden listener.
      await waitFor('a logged refusal', () => refusals() > 0, 2000, 10);
      const failures = log.raw.filter((l) => l.includes('"event":"proxy.backend_failed"'));
      assert.deepEqual(failures.map((l) => JSON.parse(l).code as string), failures.map(() => ADDRESS_NOT_ALLOWED), failures.join('\n'));
      if (answers.includes('127.0.0.2')) assert.equal(forbidden.connections, 0, 'the forbidden listener was connected');
      assert.equal(allowed.connections, 1, 'only the first request connected (not the good address among bad ones either)');
    });
  }

  it('an address literal outside allowedNetworks in the table (an older entry, another writer) is not connected', async () => {
    routes.table = tableOf([backend('old', 'o1', `http://127.0.0.2:${forbidden.port}`)]);
    const r = await request(proxy.port, '/old/');
    assert.equal(r.status, 502);
    assert.equal(forbidden.connections, 0);
    await waitFor('a logged refusal', () => refusals() > 0, 2000, 10);
  });

  it('a link-local literal in the table is not connected, and a good backend of the same tool serves instead', async () => {
    routes.table = tableOf([backend('meta', 'm1', 'http://169.254.169.254:80'), backend('meta', 'm2', `http://127.0.0.1:${allowed.port}`)]);
    for (let i = 0; i < 4; i++) {
      const r = await request(proxy.port, '/meta/');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'allowed');
    }
  });

  it('a WebSocket handshake to a disallowed backend is refused without connecting', async () => {
    routes.table = tableOf([backend('ws', 'w1', `http://127.0.0.2:${forbidden.port}`)]);
    forbidden.server.on('upgrade', (_req, socket) => socket.destroy());
    const text = await new Promise<string>((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1', () =>
        s.write('GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
      );
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(out));
    });
    assert.match(text, /^HTTP\/1\.1 502 /);
    assert.equal(forbidden.connections, 0);
  });

  it('a backend fallback discovery hands over is checked as well', async () => {
    const route = createRouteBackend({ id: 'd1', url: `http://127.0.0.2:${forbidden.port}`, source: 'discovered' })!;
    const hooked = await startProxy(new StaticRoutes(tableOf([], [{ tool: 'disc', host: '127.0.0.2', port: forbidden.port, createdAt: 1 }])), testConfig({}, { allowedNetworks: networks }), {
      hooks: { onNoLiveBackend: async () => route },
    });
    try {
      const r = await request(hooked.port, '/disc/');
      assert.equal(r.status, 502);
      assert.equal(forbidden.connections, 0);
    } finally {
      await hooked.close();
    }
  });

  it('redirects are relayed, never followed: the proxy does not connect where a backend points', async () => {
    const redirector = await listenOn('127.0.0.1', (req, res) => {
      const to = req.url === '/r/meta' ? 'http://169.254.169.254/latest/meta-data/' : `http://127.0.0.2:${forbidden.port}/secret`;
      res.writeHead(req.url === '/r/meta' ? 307 : 302, { location: to, connection: 'close' }).end();
    });
    try {
      routes.table = tableOf([backend('r', 'r1', `http://127.0.0.1:${redirector.port}`)]);
      const a = await request(proxy.port, '/r/x');
      assert.equal(a.status, 302);
      assert.equal(a.headers.location, `http://127.0.0.2:${forbidden.port}/secret`);
      const b = await request(proxy.port, '/r/meta');
      assert.equal(b.status, 307);
      assert.equal(b.headers.location, 'http://169.254.169.254/latest/meta-data/');
      assert.equal(redirector.requests, 2, 'one upstream request per client request');
      assert.equal(forbidden.connections, 0, 'the proxy followed a redirect');
    } finally {
      await redirector.close();
    }
  });
});

describe('security: a rebound name never reaches another tool\'s port', function () {
  this.timeout(20_000);
  // Tool a holds 127.0.0.1:<port> (registered by address); tool b registered http://b.test:<port> while
  // b.test stood for 127.0.0.2, a free address (b's own server listens there, on the same port); tool c
  // registered by name, c.test standing for its own 127.0.0.1:<other port>. Every server answers
  // `connection: close`, so each request makes a new connection and resolves the name again.
  let a: Listener;
  let b: Listener;
  let c: Listener;
  let proxy: TestProxy;
  let routes: StaticRoutes;
  let log: ReturnType<typeof capturingLogger>;
  let api: Api;
  let store: MemoryStore;

  const networks = ['127.0.0.0/8'];
  const answer = (text: string): http.RequestListener => (_req, res) => res.writeHead(200, { connection: 'close' }).end(text);

  before(async () => {
    a = await listenOn('127.0.0.1', answer('a'));
    b = await listenOn('127.0.0.2', answer('b'), a.port);
    c = await listenOn('127.0.0.1', answer('c'));
    for (const l of [a, b, c]) l.server.on('upgrade', (_req, socket) => socket.destroy());
    routes = new StaticRoutes();
    log = capturingLogger();
    proxy = await startProxy(routes, testConfig({ accessLog: true }, { allowedNetworks: networks }), { lookup: proxyLookup, logger: log.logger });
    store = new MemoryStore();
    api = await startApi({ store, lookup: registryLookup, overrides: { allowedNetworks: networks } });
    dns.set('b.test', ['127.0.0.2']);
    dns.set('c.test', ['127.0.0.1']);
    for (const [tool, url] of [
      ['a', `http://127.0.0.1:${a.port}`],
      ['b', `http://b.test:${a.port}`],
      ['c', `http://c.test:${c.port}`],
    ]) {
      const r = await api.call('PUT', `/v1/tools/${tool}/backends/${tool}1`, { json: { url } });
      assert.equal(r.status, 200, r.text);
    }
    routes.table = RouteTable.fromSnapshot(await store.snapshot());
  });

  after(async () => {
    await api?.close();
    await store?.close();
    await proxy?.close();
    for (const l of [a, b, c]) await l?.close();
  });

  beforeEach(() => {
    for (const l of [a, b, c]) l.connections = l.requests = 0;
    log.raw.length = 0;
    dns.set('b.test', ['127.0.0.2']);
  });

  const errors = async (kind: string) => metricValue(await proxy.metrics.registry.metrics(), 'switchboard_proxy_errors_total', { kind });

  it('a name resolving to another tool\'s address:port is 502 and nothing reaches that tool; resolving to a free address it is forwarded', async () => {
    const first = await request(proxy.port, '/b/');
    assert.deepEqual([first.status, first.body], [200, 'b'], 'forwarded while b.test stands for the free address');
    for (const answers of [['127.0.0.1'], ['127.0.0.2', '127.0.0.1']]) {
      dns.set('b.test', answers);
      const before = await errors('assigned_elsewhere');
      const r = await request(proxy.port, '/b/', { headers: { accept: 'application/json' } });
      assert.equal(r.status, 502, r.body);
      assert.equal(JSON.parse(r.body).error.code, 'bad_gateway');
      assert.equal(await errors('assigned_elsewhere'), before + 1, answers.join(', '));
    }
    assert.equal(a.connections, 0, "the proxy connected to a's server for b");
    assert.equal(a.requests, 0);
    const failed = log.events('proxy.backend_failed');
    assert.deepEqual(failed.map((l) => [l.tool, l.kind, l.code]), [
      ['b', 'assigned_elsewhere', 'ERR_ADDRESS_ASSIGNED_ELSEWHERE'],
      ['b', 'assigned_elsewhere', 'ERR_ADDRESS_ASSIGNED_ELSEWHERE'],
    ]);
    await waitFor('the access-log lines', () => log.events('access').length >= 3, 2000, 10);
    assert.deepEqual(log.events('access').map((l) => [l.tool, l.status, l.outcome]), [
      ['b', 200, 'ok'],
      ['b', 502, 'bad_gateway'],
      ['b', 502, 'bad_gateway'],
    ]);

    dns.set('b.test', ['127.0.0.2']);
    const back = await request(proxy.port, '/b/');
    assert.deepEqual([back.status, back.body], [200, 'b'], 'forwarded again once the name stands for the free address');
    assert.equal((await request(proxy.port, '/a/')).body, 'a', "a's own route is untouched");
  });

  it('a WebSocket handshake by a name resolving to another tool\'s address:port is 502 without connecting', async () => {
    dns.set('b.test', ['127.0.0.1']);
    const before = await errors('assigned_elsewhere');
    const head = await rawRequest(
      proxy.port,
      'GET /b/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(head, /^HTTP\/1\.1 502 /);
    assert.equal(await errors('assigned_elsewhere'), before + 1);
    assert.equal(a.connections, 0, "the relay connected to a's server for b");
  });

  it('a tool registered by name reaches the address it holds under that name', async () => {
    const before = await errors('assigned_elsewhere');
    const r = await request(proxy.port, '/c/');
    assert.deepEqual([r.status, r.body], [200, 'c']);
    assert.equal(await errors('assigned_elsewhere'), before);
  });
});

describe('security: ConnectGuard', () => {
  const guard = new ConnectGuard(['127.0.0.1/32', '10.0.0.0/8'], proxyLookup);

  it('allows inside allowedNetworks only, never link-local, mapped forms judged as IPv4', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '::ffff:127.0.0.1', '::ffff:a01:203']) assert.equal(guard.allows(a), true, a);
    for (const a of ['127.0.0.2', '169.254.169.254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', 'fe80::1', '::1', '0.0.0.0', '8.8.8.8', 'not-an-ip']) assert.equal(guard.allows(a), false, a);
  });

  it('fails a lookup whose answer holds any disallowed address, in both callback shapes', async () => {
    dns.set('g.test', ['10.0.0.1', '169.254.169.254']);
    dns.set('ok.test', ['10.0.0.1']);
    const one = (name: string) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
        guard.lookup(name, {}, ((err: NodeJS.ErrnoException | null, address: unknown) => resolve({ err, address })) as never),
      );
    const all = (name: string) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
        guard.lookup(name, { all: true }, ((err: NodeJS.ErrnoException | null, address: unknown) => resolve({ err, address })) as never),
      );
    assert.equal((await one('g.test')).err?.code, ADDRESS_NOT_ALLOWED);
    assert.equal((await all('g.test')).err?.code, ADDRESS_NOT_ALLOWED);
    assert.deepEqual(await one('ok.test'), { err: null, address: '10.0.0.1' });
    assert.deepEqual(await all('ok.test'), { err: null, address: [{ address: '10.0.0.1', family: 4 }] });
    assert.equal((await one('missing.test')).err?.code, 'ENOTFOUND');
  });
});
