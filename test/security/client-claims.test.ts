import assert from 'node:assert/strict';
import { StaticRoutes, backend, startProxy, tableOf, testConfig, type TestProxy } from '../proxy/helpers';
import { RawBackend, exchange, statusLines, type SeenRequest } from './raw-backend';
import type { Config } from '../../src/config';

/**
 * What a client says about itself in its headers, and what of it reaches a backend: raw bytes in front of
 * real proxies, a raw backend behind them that logs every header line as it arrived. Each claim is sent
 * with a value of its own (a marker), so a marker found anywhere in the backend's bytes is a claim that got
 * through, whatever header carried it.
 */

/** Headers in which a client claims its address, scheme, server, port or original URL. */
const CLAIMS = [
  'Forwarded-For',
  'X-Forwarded',
  'X-Real-IP',
  'X-Client-IP',
  'Client-IP',
  'True-Client-IP',
  'CF-Connecting-IP',
  'Fastly-Client-IP',
  'X-Cluster-Client-IP',
  'X-Originating-IP',
  'X-Remote-IP',
  'X-Remote-Addr',
  'CF-Pseudo-IPv4',
  'X-AppEngine-User-IP',
  'X-Forwarded-Ssl',
  'X-Forwarded-Scheme',
  'X-Url-Scheme',
  'Front-End-Https',
  'X-Forwarded-Server',
  'X-Original-URL',
  'X-Rewrite-URL',
  'X-Original-URI',
  'X-Forwarded-Uri',
];

/** The forwarding headers the proxy writes itself, replacing a client's. */
const REPLACED = ['X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Port', 'X-Forwarded-Prefix', 'Forwarded'];

/** The proxy's own Forwarded element (RFC 7239) for a request from 127.0.0.1 with `Host: proxy.example`. */
const OWN_FORWARDED = 'for=127.0.0.1;host="proxy.example";proto=http';

/** Every name the proxy sets or strips: none may reach a backend under another spelling. */
const OURS = [...CLAIMS, ...REPLACED, 'X-Request-Id', 'Via', 'X-Switchboard-Forwarded', 'Content-Length', 'Transfer-Encoding', 'Keep-Alive', 'Proxy-Connection', 'Proxy-Authorization'];

/** Names that only exist with `_`, and names of no meaning to the proxy spelled with one. */
const OTHER_UNDERSCORED = ['X_Custom_Header', 'my_header', 'a_b', '_leading', 'trailing_', 'Accept_Language', 'Authorization_'];

/** The spellings of a dashed name with `_`: all of its dashes, the first, the last, in upper case. */
function underscored(name: string): string[] {
  const all = name.replace(/-/g, '_');
  const first = name.replace('-', '_');
  const last = name.replace(/-(?=[^-]*$)/, '_');
  return [...new Set([all, first, last, all.toUpperCase(), all.toLowerCase()])].filter((n) => n.includes('_'));
}

/** How CGI and WSGI servers name a header: HTTP_ + upper case, `-` turned into `_`. */
function folded(name: string): string {
  return `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
}

function valuesOf(seen: SeenRequest, name: string): string[] {
  return seen.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** Header lines whose values are markers: `<name>: marker-<n>`; the markers, to look for at the backend. */
function marked(names: string[], tag: string): { lines: string[]; markers: string[] } {
  const markers = names.map((_, i) => `${tag}-${i}-6.6.6.${i % 250}`);
  return { lines: names.map((n, i) => `${n}: ${markers[i]}`), markers };
}

describe('security: what a client claims in its headers', function () {
  this.timeout(20_000);
  let raw: RawBackend;
  const proxies: TestProxy[] = [];
  let open: TestProxy;
  let trusting: TestProxy;
  let permissive: TestProxy;

  async function start(config: Config): Promise<TestProxy> {
    const p = await startProxy(new StaticRoutes(tableOf([backend('echo', 'e1', raw.url)])), config);
    proxies.push(p);
    return p;
  }

  before(async () => {
    raw = await new RawBackend().start();
    open = await start(testConfig());
    trusting = await start(testConfig({ trustedProxies: ['127.0.0.0/8'] }));
    permissive = await start(testConfig({ allowUnderscoreHeaders: true }));
  });

  after(async () => {
    for (const p of proxies) await p.close();
    await raw?.close();
  });

  /** One request with these header lines through `p`; what the backend received. */
  async function through(p: TestProxy, lines: string[], head = 'GET /echo/x HTTP/1.1\r\nHost: proxy.example'): Promise<SeenRequest> {
    raw.reset();
    const answer = await exchange(p.port, `${head}\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`);
    assert.deepEqual(statusLines(answer.text), [200], answer.text.slice(0, 300));
    assert.equal(raw.requests.length, 1);
    return raw.requests[0];
  }

  function assertNoMarker(markers: string[]): void {
    const bytes = raw.bytes();
    const through = markers.filter((m) => bytes.includes(m));
    assert.deepEqual(through, [], `claims reached the backend:\n${bytes}`);
  }

  it('drops every header name with an underscore by default, whichever name it spells (X_Forwarded_For, x-forwarded_for, X_Custom_Header)', async () => {
    const names = [...OURS.flatMap(underscored), ...OTHER_UNDERSCORED];
    const { lines, markers } = marked(names, 'underscore');
    for (const p of [open, trusting]) {
      const seen = await through(p, lines);
      assert.deepEqual(seen.headers.map(([n]) => n).filter((n) => n.includes('_')), []);
      assertNoMarker(markers);
      assert.deepEqual(valuesOf(seen, 'x-forwarded-for'), ['127.0.0.1']);
    }
  });

  it('with proxy.allowUnderscoreHeaders, passes other names with an underscore but never one that folds onto a header the proxy sets or strips', async () => {
    const ours = marked(OURS.flatMap(underscored), 'ours');
    const other = marked(OTHER_UNDERSCORED, 'other');
    const seen = await through(permissive, [...ours.lines, ...other.lines]);
    assertNoMarker(ours.markers);
    for (const [i, name] of OTHER_UNDERSCORED.entries()) assert.deepEqual(valuesOf(seen, name), [other.markers[i]], name);
    // What a CGI or WSGI server makes of it: no variable is written twice, so none merges a client's value.
    const keys = seen.headers.map(([n]) => folded(n));
    assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), []);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-for'), ['127.0.0.1']);
  });

  it('from an untrusted client: every claim of its address, scheme, server, port, prefix or original URL is removed or set by the proxy, in any case', async () => {
    const names = [...CLAIMS, ...REPLACED].flatMap((n) => [n, n.toLowerCase(), n.toUpperCase()]);
    const { lines, markers } = marked(names, 'claim');
    const seen = await through(open, lines);
    assertNoMarker(markers);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-host'), ['proxy.example']);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-port'), [String(open.port)]);
    assert.deepEqual(valuesOf(seen, 'x-forwarded-prefix'), ['/echo']);
    assert.deepEqual(valuesOf(seen, 'forwarded'), [OWN_FORWARDED]);
    for (const name of CLAIMS) assert.deepEqual(valuesOf(seen, name), [], name);
  });

  it('never forwards a Proxy header (the HTTP_PROXY a CGI server would hand the tool), from any peer', async () => {
    for (const p of [open, trusting]) {
      const seen = await through(p, ['Proxy: http://attacker.example:3128']);
      assert.deepEqual(valuesOf(seen, 'proxy'), []);
      assertNoMarker(['attacker.example']);
    }
  });

  it('from a trusted proxy: the same claims pass as they came, its port and prefix included; its Forwarded is extended', async () => {
    const names = [...CLAIMS, 'X-Forwarded-Port', 'X-Forwarded-Prefix'];
    const { lines, markers } = marked(names, 'trusted');
    const seen = await through(trusting, [...lines, 'Forwarded: for=203.0.113.9;proto=https']);
    for (const [i, name] of names.entries()) assert.deepEqual(valuesOf(seen, name), [markers[i]], name);
    assert.deepEqual(valuesOf(seen, 'forwarded'), [`for=203.0.113.9;proto=https, ${OWN_FORWARDED}`]);
  });

  it('sets X-Forwarded-Port to the port the client connected to, and X-Forwarded-Prefix to /<tool> only when the path named the tool (the path reaches the backend unchanged)', async () => {
    const hosted = await start(testConfig({}, { domain: 'tools.test' }));
    const byPath = await through(hosted, ['X-Forwarded-Prefix: /spoofed'], 'GET /echo/a/b?c=d HTTP/1.1\r\nHost: proxy.example');
    assert.equal(byPath.target, '/echo/a/b?c=d');
    assert.deepEqual(valuesOf(byPath, 'x-forwarded-prefix'), ['/echo']);
    assert.deepEqual(valuesOf(byPath, 'x-forwarded-port'), [String(hosted.port)]);
    const byHost = await through(hosted, ['X-Forwarded-Prefix: /spoofed'], 'GET /a/b HTTP/1.1\r\nHost: echo.tools.test');
    assert.equal(byHost.target, '/a/b');
    assert.deepEqual(valuesOf(byHost, 'x-forwarded-prefix'), []);
    assert.deepEqual(valuesOf(byHost, 'x-forwarded-port'), [String(hosted.port)]);
    // A trusted proxy without a prefix of its own: the proxy's.
    assert.deepEqual(valuesOf(await through(trusting, []), 'x-forwarded-prefix'), ['/echo']);
  });

  it('keeps a client X-Request-Id only when it is well-formed and short, from any peer; replaces it otherwise, from a trusted proxy too', async () => {
    for (const p of [open, trusting]) {
      for (const good of ['abc.DEF-123_x', 'a', 'x'.repeat(128), '0f8fad5b-d9cb-469f-a165-70867728950e']) {
        assert.deepEqual(valuesOf(await through(p, [`X-Request-Id: ${good}`]), 'x-request-id'), [good]);
      }
      for (const bad of ['x'.repeat(129), 'has space', 'semi;colon', '<script>', 'a"b', 'Root=1-5759e988;Parent=53995c3f', 'é']) {
        const ids = valuesOf(await through(p, [`X-Request-Id: ${bad}`]), 'x-request-id');
        assert.equal(ids.length, 1);
        assert.notEqual(ids[0], bad);
        assert.match(ids[0], /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      }
    }
  });

  it('sends an HTTP/1.0 request without Host on with a public name: <tool>.<domain>, else proxy.publicHost (default localhost); never the backend address', async () => {
    const withDomain = await start(testConfig({}, { domain: 'tools.test' }));
    const withName = await start(testConfig({ publicHost: 'tools.example.org:8443' }));
    for (const [p, host] of [
      [withDomain, 'echo.tools.test'],
      [withName, 'tools.example.org:8443'],
      [open, 'localhost'],
    ] as const) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const seen = await through(p, [], `${method} /echo/page HTTP/1.0`);
        assert.deepEqual(valuesOf(seen, 'host'), [host]);
        assert.ok(!raw.bytes().includes(`:${raw.port}`), `the backend's own port reached it:\n${raw.bytes()}`);
      }
    }
  });
});
