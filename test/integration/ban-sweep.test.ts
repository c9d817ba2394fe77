import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/registry/memory-store';
import { blockKey } from '../../src/table/policy-records';
import { startInProcess, type InProcess } from '../support/in-process';
import { startBackend, type Backend } from '../support/backend';
import { waitFor } from '../support/wait';

const ADMIN = 'test-admin-token-0123456789abcdef';
const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

describe('a ban with a ttl in a running switchboard', function () {
  this.timeout(60_000);
  let sb: InProcess;
  let web: Backend;
  const store = new MemoryStore();

  before(async () => {
    sb = await startInProcess({ adminToken: ADMIN, store });
    web = await startBackend('web');
    assert.equal((await fetch(`${sb.control}/v1/tools/web/backends/b1`, { method: 'PUT', headers, body: JSON.stringify({ url: web.url }) })).status, 200);
  });
  after(async () => {
    await sb?.stop();
    await web?.close();
    await store.close();
  });

  const status = async () => {
    const res = await fetch(`${sb.proxyUrl}/web/`, { headers: { 'user-agent': 'Expiring/1' } });
    await res.arrayBuffer();
    return res.status;
  };

  it('stops applying at its expiry, and the expiry leader removes its record afterwards', async () => {
    await waitFor('web routed', async () => (await status()) === 200);
    const put = await fetch(`${sb.control}/v1/blocks/short`, { method: 'PUT', headers, body: JSON.stringify({ userAgent: '^Expiring/', ttl: 1 }) });
    assert.equal(put.status, 200);
    await waitFor('the ban applied', async () => (await status()) === 403, 5000, 20);
    await waitFor('the ban expired at the proxy', async () => (await status()) === 200, 5000, 50);
    await waitFor('the record swept from the store', async () => (await store.getPolicy(blockKey('short'))) === null, 30_000, 200);
  });
});
