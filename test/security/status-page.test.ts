import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/registry/memory-store';
import { STATUS_SCRIPT } from '../../src/control/status-script';
import { Client, appTarget } from './support';

/** Every <script> element of a page, whole: the page's own one is the only one allowed. */
function scripts(html: string): string[] {
  return [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1]);
}

/**
 * The status page shows what clients sent (backend ids, client versions): markup in them is shown as
 * text, never run. The page is open on the operator port, so this is the one place stored client input
 * is rendered as HTML.
 */
describe('security: hostile input on the status page', function () {
  this.timeout(20_000);
  let store: MemoryStore;
  let sb: Awaited<ReturnType<typeof appTarget>>;
  let client: Client;

  before(async () => {
    store = new MemoryStore();
    sb = await appTarget(store, { proxy: true });
    client = new Client(sb.base, 1);
  });

  after(async () => {
    client?.close();
    await sb?.stop();
    await store?.close();
  });

  it('renders client-supplied strings as text', async () => {
    const payloads = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'><svg/onload=alert(1)>"];
    for (const [i, clientVersion] of payloads.entries()) {
      const r = await client.call('PUT', `/v1/tools/alpha/backends/x${i}.-_`, { json: { url: `http://127.0.0.1:${20001 + i}`, clientVersion } });
      assert.equal(r.status, 200, r.text);
    }
    const page = await client.send({ method: 'GET', path: '/', headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    for (const raw of payloads) assert.ok(!page.text.includes(raw), `unescaped ${raw} on the status page`);
    // The page's own charts are SVG and it has one script of its own: nothing else of either.
    for (const raw of ['<img', '<svg/']) assert.ok(!page.text.includes(raw), `unescaped ${raw} on the status page`);
    assert.deepEqual(scripts(page.text), [STATUS_SCRIPT]);
    assert.ok(page.text.includes('&lt;script&gt;') || page.text.includes('&#60;script&#62;'), 'the payload is shown, escaped');
  });

  it('renders a hostile filter (the tool search, reflected in the form and the links) as text', async () => {
    const hostile = `"><script>alert(1)</script><svg/onload=alert(2)>'`;
    const page = await client.send({ method: 'GET', path: `/?tool=${encodeURIComponent(hostile)}&refresh=7`, headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const csp = new Map(String(page.headers['content-security-policy']).split(';').map((d) => {
      const [name, ...sources] = d.trim().split(/\s+/);
      return [name, sources] as const;
    }));
    assert.equal(csp.get('script-src')?.length, 1, 'one script source');
    assert.match(csp.get('script-src')![0], /^'sha256-[A-Za-z0-9+/]+=*'$/, 'a hash: no inline script but the page\'s own, no eval');
    assert.deepEqual(csp.get('default-src'), ["'none'"]);
    assert.deepEqual(csp.get('connect-src'), ["'self'"]);
    for (const raw of [hostile, '<script>alert', '<svg/onload']) assert.ok(!page.text.includes(raw), `unescaped ${raw} on the status page`);
    assert.deepEqual(scripts(page.text), [STATUS_SCRIPT]);
    assert.ok(page.text.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;svg/onload=alert(2)&gt;&#39;"'), 'the search is shown in the form, escaped');
  });
});
