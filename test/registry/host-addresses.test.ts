import assert from 'node:assert/strict';
import type { Store } from '../../src/registry/store';
import type { Lookup } from '../../src/registry/url-policy';
import { startBackend, type Backend } from '../support/backend';
import { Client, appTarget, type Target } from '../security/support';
import { startApi, storeKinds, type Api, type StoreKind } from './harness';

/**
 * A name and its addresses are one host to the port registry: assignments are keyed by address, so a
 * tool asking by name never gets (or registers onto) a port another tool holds by address, and the other
 * way round. The URL a backend registered keeps its name.
 */

const NAMES: Record<string, string[]> = {
  localhost: ['::1', '127.0.0.1'],
  'one.test': ['127.0.0.1'],
};
const lookup: Lookup = async (name) => {
  const found = NAMES[name];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return found;
};

const listed = async (store: Store) =>
  (await store.listAssignments()).map((a) => `${a.tool}@${a.host}:${a.port}`).sort();

for (const kind of storeKinds()) {
  describe(`a host name and its address are one host to the port registry (${kind.name} store)`, function () {
    this.timeout(20_000);
    before(() => kind.before());
    after(() => kind.after());
    registryCases(kind);
    proxyCase(kind);
  });
}

function registryCases(kind: StoreKind): void {
  describe('the registration API', () => {
    let store: Store;
    let api: Api;

    beforeEach(async () => {
      store = await kind.create();
      api = await startApi({ store, lookup, overrides: { ports: { min: 47000, max: 47002 } } });
    });
    afterEach(async () => {
      await api.close();
      await store.close();
    });

    const tokenOf = async (tool: string) => {
      const r = await api.call('POST', `/v1/tools/${tool}/tokens`);
      assert.equal(r.status, 201, r.text);
      return r.body.token as string;
    };

    it('POST /v1/ports never gives a port held on an address to another tool asking by a name of it', async () => {
      const p1 = await api.call('POST', '/v1/ports', { json: { tool: 'p1', host: '127.0.0.1' } });
      assert.equal(p1.status, 200, p1.text);
      assert.equal(p1.body.port, 47000);
      const p2 = await api.call('POST', '/v1/ports', { json: { tool: 'p2', host: 'localhost' } });
      assert.equal(p2.status, 200, p2.text);
      assert.notEqual(p2.body.port, p1.body.port, 'p2 got p1\'s port through "localhost"');
      // The answer names the assignment's key: the lowest address of the name.
      assert.deepEqual([p2.body.host, p2.body.port], ['127.0.0.1', 47001]);
      assert.deepEqual(await listed(store), ['p1@127.0.0.1:47000', 'p2@127.0.0.1:47001', 'p2@::1:47001']);
      // Asking again by name or by either address answers the same port.
      for (const host of ['localhost', '127.0.0.1', '::1']) {
        const again = await api.call('POST', '/v1/ports', { json: { tool: 'p2', host } });
        assert.equal(again.body.port, 47001, host);
      }
      // ::1:47000 is free: a third tool on ::1 gets it, and p1 asking by name no longer finds 47000 free on both.
      const p3 = await api.call('POST', '/v1/ports', { json: { tool: 'p3', host: '::1' } });
      assert.deepEqual([p3.body.host, p3.body.port], ['::1', 47000]);
      const p1ByName = await api.call('POST', '/v1/ports', { json: { tool: 'p1', host: 'localhost' } });
      assert.equal(p1ByName.body.port, 47002);
    });

    it("a tool token's heartbeat naming another tool's address is 409 port_conflict, and nothing changes", async () => {
      assert.equal((await api.call('PUT', '/v1/tools/a/backends/a1', { json: { url: 'http://127.0.0.1:41001' } })).status, 200);
      const before = await listed(store);
      const token = await tokenOf('b');
      for (const url of ['http://localhost:41001', 'http://one.test:41001']) {
        const r = await api.call('PUT', '/v1/tools/b/backends/b1', { token, json: { url } });
        assert.equal(r.status, 409, `${url}: ${r.text}`);
        assert.equal(r.body.error.code, 'port_conflict');
        assert.equal(r.body.error.field, 'url');
        assert.match(r.body.error.message, /:41001 \(address [^)]*127\.0\.0\.1[^)]*\) is assigned to tool "a"/);
      }
      assert.deepEqual(await store.getBackends('b'), []);
      assert.deepEqual(await listed(store), before);
    });

    it('a name resolving to several addresses claims each: another tool cannot register any of them', async () => {
      const r = await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: 'http://localhost:41002' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.url, 'http://localhost:41002', 'the url keeps the name as given');
      assert.deepEqual(await listed(store), ['alpha@127.0.0.1:41002', 'alpha@::1:41002']);
      for (const url of ['http://[::1]:41002', 'http://127.0.0.1:41002']) {
        const other = await api.call('PUT', '/v1/tools/beta/backends/b1', { json: { url } });
        assert.equal(other.status, 409, `${url}: ${other.text}`);
        assert.equal(other.body.error.code, 'port_conflict');
      }
      // One address held by another tool is enough to refuse the name.
      assert.equal((await api.call('PUT', '/v1/tools/gamma/backends/g1', { json: { url: 'http://[::1]:41003' } })).status, 200);
      const named = await api.call('PUT', '/v1/tools/delta/backends/d1', { json: { url: 'http://localhost:41003' } });
      assert.equal(named.status, 409, named.text);
      assert.match(named.body.error.message, /is assigned to tool "gamma"/);
      assert.equal((await store.getAssignment('127.0.0.1', 41003)), null, 'nothing assigned on the free address either');
    });

    it('DELETE /v1/ports/{name}/{port} releases the port on every address of the name', async () => {
      const token = await tokenOf('alpha');
      const a = await api.call('POST', '/v1/ports', { token, json: { tool: 'alpha', host: 'localhost' } });
      assert.equal(a.status, 200, a.text);
      assert.equal((await listed(store)).length, 2);
      // Another tool's token may not release it, by name or by address.
      const other = await tokenOf('beta');
      for (const host of ['localhost', '%3A%3A1']) assert.equal((await api.call('DELETE', `/v1/ports/${host}/${a.body.port}`, { token: other })).status, 403);
      assert.equal((await api.call('DELETE', `/v1/ports/localhost/${a.body.port}`, { token })).status, 204);
      assert.deepEqual(await listed(store), []);
      assert.equal((await api.call('DELETE', `/v1/ports/localhost/${a.body.port}`, { token })).status, 404);
    });
  });

}

function proxyCase(kind: StoreKind): void {
  describe("tool b cannot route /b/ to tool a's server by naming its address (production composition)", () => {
    let store: Store;
    let target: Target & { proxyPort: number | null };
    let client: Client;
    let a: Backend;

    beforeEach(async () => {
      store = await kind.create();
      a = await startBackend('tool a answers');
      target = await appTarget(store, { proxy: true, overrides: { discovery: { enabled: false } } });
      client = new Client(target.base);
    });
    afterEach(async () => {
      client.close();
      await target.close();
      await store.close();
      await a.close();
    });

    it('b\'s token registering http://localhost:<a\'s port> is 409 and /b/ never answers with a\'s content', async () => {
      assert.equal((await client.call('PUT', '/v1/tools/a/backends/a1', { json: { url: `http://127.0.0.1:${a.port}` } })).status, 200);
      const issued = await client.call('POST', '/v1/tools/b/tokens');
      const r = await client.call('PUT', '/v1/tools/b/backends/b1', { token: issued.body.token, json: { url: `http://localhost:${a.port}` } });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'port_conflict');
      const res = await fetch(`http://127.0.0.1:${target.proxyPort}/b/`);
      const text = await res.text();
      assert.equal(res.status, 404, text);
      assert.ok(!text.includes('tool a answers'), text);
      const viaA = await fetch(`http://127.0.0.1:${target.proxyPort}/a/`);
      assert.equal(await viaA.text(), 'tool a answers /a/');
    });
  });
}
