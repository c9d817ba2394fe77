import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/registry/memory-store';
import { Client, appTarget } from './support';

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
    for (const raw of ['<script>', '<img', '<svg']) assert.ok(!page.text.includes(raw), `unescaped ${raw} on the status page`);
    assert.ok(page.text.includes('&lt;script&gt;') || page.text.includes('&#60;script&#62;'), 'the payload is shown, escaped');
  });
});
