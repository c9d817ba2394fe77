import assert from 'node:assert/strict';
import { resolveTool } from '../../src/proxy/host';
import { StaticRoutes, backend, startProxy, tableOf, testConfig, type TestProxy } from '../proxy/helpers';
import { exchange, statusLines } from './raw-backend';
import { startBackend, type Backend } from '../support/backend';

/**
 * Path and Host tricks never route a request to a tool other than the one it names. Two tools with
 * distinct backends; each case says which backend may get the request (or none), and the test checks
 * which one did. Bytes are written raw, so no client library normalises anything first.
 */

type Want = 'alpha' | 'beta' | 'none' | 'alpha-or-none' | 'beta-or-none';

interface Trick {
  name: string;
  target: string;
  host?: string;
  /** Extra header lines. */
  extra?: string[];
  want: Want;
}

const DOMAIN = 'example.com';

const TRICKS: Trick[] = [
  // Path routing: the first segment, raw, must be a tool name as is.
  { name: 'plain', target: '/beta/x', want: 'beta' },
  { name: '/%2e%2e/ before the tool', target: '/%2e%2e/beta/', want: 'none' },
  { name: '/%2E%2E/ upper-case escapes', target: '/%2E%2E/beta/', want: 'none' },
  { name: '/../ before the tool', target: '/../beta/', want: 'none' },
  { name: '/./ before the tool', target: '/./beta/', want: 'none' },
  { name: '//tool', target: '//beta/', want: 'none' },
  { name: '///tool', target: '///beta/', want: 'none' },
  { name: '/a%2F..%2Fb/', target: '/gamma%2F..%2Fbeta/', want: 'none' },
  { name: '/alpha%2F..%2Fbeta/', target: '/alpha%2F..%2Fbeta/', want: 'none' },
  { name: '/alpha%2fbeta', target: '/alpha%2fbeta/', want: 'none' },
  { name: 'dot segments after the tool stay with it', target: '/alpha/../beta/', want: 'alpha' },
  { name: 'escaped dot segments after the tool stay with it', target: '/alpha/%2e%2e/beta/', want: 'alpha' },
  { name: '..;/ after the tool', target: '/alpha/..;/beta/', want: 'alpha' },
  { name: 'double slash after the tool', target: '/alpha//beta/', want: 'alpha' },
  { name: 'encoded tool name', target: '/%62eta/', want: 'none' },
  { name: 'partly encoded tool name', target: '/b%65ta/x', want: 'none' },
  { name: 'upper-case tool name', target: '/BETA/', want: 'none' },
  { name: 'mixed-case tool name', target: '/Beta/', want: 'none' },
  { name: 'NUL after the tool name', target: '/beta%00/', want: 'none' },
  { name: 'matrix parameter on the tool', target: '/beta;x=1/', want: 'none' },
  { name: 'trailing dot on the tool', target: '/beta./', want: 'none' },
  { name: 'UTF-8 escapes', target: '/b%C3%ABta/', want: 'none' },
  { name: 'overlong UTF-8 dots', target: '/%C0%AE%C0%AE/beta/', want: 'none' },
  { name: 'raw UTF-8 bytes', target: '/b\xc3\xabta/', want: 'none' },
  { name: 'punycode of a lookalike', target: '/xn--bta-yla/', want: 'none' },
  { name: 'backslash', target: '/alpha\\..\\beta/', want: 'alpha-or-none' },
  { name: 'fragment', target: '/alpha#/../beta/', want: 'alpha-or-none' },
  { name: 'query naming another tool', target: '/alpha/?next=/beta/', want: 'alpha' },
  { name: 'tool without slash redirects to itself', target: '/beta?x=/alpha/', want: 'none' },
  { name: 'absolute-form naming another host', target: 'http://beta/x', host: 'proxy.local', want: 'none' },
  { name: 'asterisk-form', target: '*', want: 'none' },
  // Host routing: <tool>.<domain>, normalised (case, port, one trailing dot), wins over the path.
  { name: 'Host names the tool', target: '/alpha/x', host: 'beta.example.com', want: 'beta' },
  { name: 'Host upper case', target: '/alpha/x', host: 'BETA.EXAMPLE.COM', want: 'beta' },
  { name: 'Host with port', target: '/alpha/x', host: 'beta.example.com:8080', want: 'beta' },
  { name: 'Host with trailing dot', target: '/alpha/x', host: 'beta.example.com.', want: 'beta' },
  { name: 'Host with trailing dot and port', target: '/alpha/x', host: 'Beta.Example.Com.:443', want: 'beta' },
  { name: 'Host with two trailing dots', target: '/alpha/x', host: 'beta.example.com..', want: 'alpha-or-none' },
  { name: 'Host with an empty label', target: '/alpha/x', host: 'beta..example.com', want: 'alpha-or-none' },
  { name: 'Host with userinfo', target: '/alpha/x', host: 'beta.example.com@alpha.example.com', want: 'alpha-or-none' },
  { name: 'Host with a bad port', target: '/alpha/x', host: 'beta.example.com:99999999', want: 'alpha-or-none' },
  { name: 'Host with escapes', target: '/alpha/x', host: 'beta%2eexample.com', want: 'alpha-or-none' },
  { name: 'Host two labels deep', target: '/alpha/x', host: 'beta.alpha.example.com', want: 'alpha-or-none' },
  { name: 'Host of the domain itself', target: '/alpha/x', host: 'example.com', want: 'alpha' },
  { name: 'Host of another domain ending alike', target: '/alpha/x', host: 'beta.badexample.com', want: 'alpha' },
  { name: 'Host with the domain inside', target: '/alpha/x', host: 'beta.example.com.evil.org', want: 'alpha' },
  { name: 'Host an IPv6 literal', target: '/alpha/x', host: '[::1]:80', want: 'alpha' },
  { name: 'Host with a lookalike label', target: '/alpha/x', host: 'xn--bta-yla.example.com', want: 'none' },
  { name: 'absolute-form overrides Host? never', target: 'http://beta.example.com/x', host: 'alpha.example.com', want: 'none' },
  { name: 'absolute-form with Host routing', target: 'http://alpha.example.com/x', host: 'beta.example.com', want: 'none' },
  { name: 'X-Forwarded-Host is not a routing input', target: '/alpha/x', host: 'proxy.local', extra: ['X-Forwarded-Host: beta.example.com'], want: 'alpha' },
  { name: 'two Host headers', target: '/x', host: 'alpha.example.com', extra: ['Host: beta.example.com'], want: 'alpha-or-none' },
];

describe('security: path and Host tricks at the proxy', function () {
  this.timeout(20_000);
  let alpha: Backend;
  let beta: Backend;
  let proxy: TestProxy;

  before(async () => {
    alpha = await startBackend((_req, res) => res.end('alpha'));
    beta = await startBackend((_req, res) => res.end('beta'));
    const table = tableOf([backend('alpha', 'a1', alpha.url), backend('beta', 'b1', beta.url)]);
    proxy = await startProxy(new StaticRoutes(table), testConfig({}, { domain: DOMAIN }));
  });

  after(async () => {
    await proxy?.close();
    await alpha?.close();
    await beta?.close();
  });

  for (const t of TRICKS) {
    it(`${t.name} (${JSON.stringify(t.target)}${t.host ? `, Host ${t.host}` : ''}) -> ${t.want}`, async () => {
      const a0 = alpha.requests;
      const b0 = beta.requests;
      const lines = [`GET ${t.target} HTTP/1.1`, `Host: ${t.host ?? 'proxy.local'}`, ...(t.extra ?? []), 'Accept: application/json', 'Connection: close'];
      const { text } = await exchange(proxy.port, Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
      const [status] = statusLines(text);
      const toAlpha = alpha.since(a0);
      const toBeta = beta.since(b0);
      const got = toAlpha.length ? 'alpha' : toBeta.length ? 'beta' : 'none';
      assert.ok(toAlpha.length + toBeta.length <= 1, 'one backend at most, once');
      const allowed = t.want === 'alpha-or-none' ? ['alpha', 'none'] : t.want === 'beta-or-none' ? ['beta', 'none'] : [t.want];
      assert.ok(allowed.includes(got), `routed to ${got} (status ${status}): ${text.slice(0, 300)}`);
      if (got === 'none') {
        assert.ok([301, 400, 404].includes(status), `refused with ${status}: ${text.slice(0, 300)}`);
      } else {
        assert.equal(status, 200);
        const seen = (got === 'alpha' ? toAlpha : toBeta)[0];
        // The path reaches the backend byte for byte.
        if (t.target.startsWith('/')) assert.equal(seen.url, t.target);
        if (got === 'alpha' && t.extra?.some((l) => l.startsWith('Host:'))) assert.equal(seen.headers.host, t.host, 'the Host routed on is the Host forwarded');
      }
    });
  }

  it('a WebSocket handshake with a path trick is refused, not routed', async () => {
    const a0 = alpha.requests;
    const b0 = beta.requests;
    const upgrades = { alpha: 0, beta: 0 };
    const onUpgrade = (name: 'alpha' | 'beta') => () => upgrades[name]++;
    alpha.server.on('upgrade', onUpgrade('alpha'));
    beta.server.on('upgrade', onUpgrade('beta'));
    for (const target of ['/%2e%2e/beta/ws', '//beta/ws', '/alpha%2F..%2Fbeta/ws', 'http://beta/ws']) {
      const req = [`GET ${target} HTTP/1.1`, 'Host: proxy.local', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n');
      const { text } = await exchange(proxy.port, req);
      assert.deepEqual(statusLines(text), [404], `${target}: ${text.slice(0, 200)}`);
    }
    assert.deepEqual(upgrades, { alpha: 0, beta: 0 });
    assert.equal(alpha.requests - a0 + beta.requests - b0, 0);
  });

  it('resolveTool: absolute-form names no tool, even when Host would', () => {
    assert.deepEqual(resolveTool('http://beta.example.com/x', 'alpha.example.com', DOMAIN), { kind: 'none' });
    assert.deepEqual(resolveTool('*', 'alpha.example.com', DOMAIN), { kind: 'none' });
    assert.deepEqual(resolveTool('/x', 'alpha.example.com', DOMAIN), { kind: 'tool', tool: 'alpha', via: 'host' });
  });
});
