import assert from 'node:assert/strict';
import { silentLogger } from '../../src/logger';
import { Policies } from '../../src/registry/policies';
import type { Store } from '../../src/registry/store';
import { blockKey, type BlockRecord } from '../../src/table/policy-records';
import { startApi, storeKinds, type Api } from './harness';

for (const kind of storeKinds()) {
  describe(`policy routes of the registration API (${kind.name} store)`, () => {
    let store: Store;
    let api: Api;

    before(async function () {
      this.timeout(15_000);
      await kind.before();
    });
    after(() => kind.after());
    beforeEach(async () => {
      store = await kind.create();
      api = await startApi({ store, overrides: { proxy: { port: 18080, maxResponseTimeoutSeconds: 120 } } });
    });
    afterEach(async () => {
      await api.close();
      await store.close();
    });

    it('puts, reads, lists and lifts a ban (PUT/GET/DELETE /v1/blocks/{id}, GET /v1/blocks)', async () => {
      const put = await api.call('PUT', '/v1/blocks/scraper', { json: { cidr: '203.0.113.0/24', reason: 'scraping', ttl: 600, tool: 'web' } });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.id, 'scraper');
      assert.equal(put.body.cidr, '203.0.113.0/24');
      assert.equal(put.body.tool, 'web');
      assert.ok(Date.parse(put.body.expiresAt) > Date.now() + 590_000);
      const ua = await api.call('PUT', '/v1/blocks/bot', { json: { userAgent: '^EvilBot/' } });
      assert.equal(ua.status, 200, ua.text);
      assert.equal(ua.body.expiresAt, undefined);
      assert.deepEqual((await api.call('GET', '/v1/blocks')).body.blocks.map((b: { id: string }) => b.id), ['bot', 'scraper']);
      assert.equal((await api.call('GET', '/v1/blocks/bot')).body.userAgent, '^EvilBot/');
      assert.equal((await api.call('DELETE', '/v1/blocks/bot')).status, 204);
      const gone = await api.call('GET', '/v1/blocks/bot');
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.field, 'id');
      assert.equal((await api.call('DELETE', '/v1/blocks/bot')).status, 404);
    });

    it('refuses bad bans with a 4xx naming the field, storing nothing', async () => {
      const cases: Array<[unknown, string, number]> = [
        [{ cidr: '10.0.0.0/33' }, 'cidr', 400],
        [{ cidr: 'not-an-address' }, 'cidr', 400],
        [{ cidr: '10.0.0.0/8', userAgent: 'x' }, 'userAgent', 400],
        [{}, 'cidr', 400],
        [{ userAgent: '(a+)+$' }, 'userAgent', 400],
        [{ userAgent: '.*a.*a.*a' }, 'userAgent', 400],
        [{ userAgent: '(unclosed' }, 'userAgent', 400],
        [{ userAgent: 'x'.repeat(257) }, 'userAgent', 400],
        [{ cidr: '10.0.0.0/8', ttl: 0 }, 'ttl', 400],
        [{ cidr: '10.0.0.0/8', ttl: 31_536_001 }, 'ttl', 400],
        [{ cidr: '10.0.0.0/8', reason: 'r'.repeat(201) }, 'reason', 400],
        [{ cidr: '10.0.0.0/8', tool: 'Not A Tool' }, 'tool', 400],
        [{ cidr: '10.0.0.0/8', extra: 1 }, 'extra', 400],
      ];
      for (const [json, field, status] of cases) {
        const r = await api.call('PUT', '/v1/blocks/b1', { json });
        assert.equal(r.status, status, `${JSON.stringify(json)}: ${r.text}`);
        assert.equal(r.body.error.field, field, `${JSON.stringify(json)}: ${r.text}`);
      }
      const unsafe = await api.call('PUT', '/v1/blocks/b1', { json: { userAgent: '(a+)+$' } });
      assert.equal(unsafe.body.error.code, 'unsafe_pattern');
      assert.equal((await api.call('PUT', '/v1/blocks/-bad', { json: { cidr: '10.0.0.0/8' } })).body.error.field, 'id');
      assert.equal(await store.getPolicy(blockKey('b1')), null);
      assert.deepEqual(await store.listPolicies(), []);
    });

    it('keeps bans to the admin: a tool token gets 403', async () => {
      const issued = await api.call('POST', '/v1/tools/web/tokens');
      const token = issued.body.token as string;
      assert.equal((await api.call('PUT', '/v1/blocks/b1', { token, json: { cidr: '10.0.0.0/8' } })).status, 403);
      assert.equal((await api.call('GET', '/v1/blocks', { token })).status, 403);
      assert.equal((await api.call('PUT', '/v1/maintenance', { token, json: { message: 'x' } })).status, 403);
    });

    it("sets a tool's policy, by the admin or the tool's own token, and refuses bad fields by name", async () => {
      const until = new Date(Date.now() + 60_000).toISOString();
      const body = { maxConcurrent: 10, rateLimit: { perClientPerSecond: 2.5, burst: 5 }, maxBodyBytes: 1024, responseTimeoutSeconds: 30, maintenance: { message: 'soon back', until }, stripPrefix: true };
      const put = await api.call('PUT', '/v1/tools/web/policy', { json: body });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual({ ...put.body, updatedAt: undefined }, { tool: 'web', ...body, updatedAt: undefined });
      const token = (await api.call('POST', '/v1/tools/web/tokens')).body.token as string;
      assert.equal((await api.call('GET', '/v1/tools/web/policy', { token })).body.maxConcurrent, 10);
      assert.equal((await api.call('PUT', '/v1/tools/other/policy', { token, json: {} })).status, 403);
      const cases: Array<[unknown, string]> = [
        [{ maxConcurrent: 0 }, 'maxConcurrent'],
        [{ rateLimit: { perClientPerSecond: 0, burst: 1 } }, 'rateLimit.perClientPerSecond'],
        [{ rateLimit: { perClientPerSecond: 1 } }, 'rateLimit.burst'],
        [{ maxBodyBytes: -1 }, 'maxBodyBytes'],
        [{ responseTimeoutSeconds: 121 }, 'responseTimeoutSeconds'],
        [{ maintenance: { until } }, 'maintenance.message'],
        [{ maintenance: { message: 'x', until: 'tomorrow' } }, 'maintenance.until'],
        [{ stripPrefix: 'yes' }, 'stripPrefix'],
      ];
      for (const [json, field] of cases) {
        const r = await api.call('PUT', '/v1/tools/web/policy', { json });
        assert.equal(r.status, 400, `${JSON.stringify(json)}: ${r.text}`);
        assert.equal(r.body.error.field, field, `${JSON.stringify(json)}: ${r.text}`);
      }
      const bound = await api.call('PUT', '/v1/tools/web/policy', { json: { responseTimeoutSeconds: 121 } });
      assert.match(bound.body.error.message, /between 1 and 120/);
      assert.equal((await api.call('GET', '/v1/tools/web/policy')).body.maxConcurrent, 10, 'a refused change keeps the policy');
      assert.equal((await api.call('PUT', '/v1/tools/Bad/policy', { json: {} })).body.error.field, 'tool');
      assert.equal((await api.call('DELETE', '/v1/tools/web/policy', { token })).status, 204);
      assert.equal((await api.call('GET', '/v1/tools/web/policy')).status, 404);
    });

    it('turns the global maintenance switch on and off', async () => {
      assert.equal((await api.call('GET', '/v1/maintenance')).status, 404);
      const on = await api.call('PUT', '/v1/maintenance', { json: { message: 'Planned outage' } });
      assert.equal(on.status, 200, on.text);
      assert.equal((await api.call('GET', '/v1/maintenance')).body.message, 'Planned outage');
      assert.equal((await api.call('PUT', '/v1/maintenance', { json: { message: '' } })).body.error.field, 'message');
      assert.equal((await api.call('DELETE', '/v1/maintenance')).status, 204);
      assert.equal((await api.call('DELETE', '/v1/maintenance')).status, 404);
    });

    it('leaves an expired ban out of the lists, and the sweep removes it unless it was put again', async () => {
      let now = Date.now();
      const policies = new Policies(store, api.config, silentLogger(), () => now);
      await policies.putBlock('short', { cidr: '10.0.0.0/8', ttl: 5 });
      await policies.putBlock('renewed', { cidr: '10.0.0.0/8', ttl: 5 });
      await policies.putBlock('forever', { userAgent: 'x' });
      now += 5000;
      assert.deepEqual((await policies.listBlocks()).map((b) => b.id), ['forever']);
      await assert.rejects(policies.getBlock('short'), { status: 404 });
      // The bans as the followed table held them, then `renewed` put again: the sweep compares what it was
      // handed against what is stored, so the new record stays.
      const seen = (await store.listPolicies()).filter((p): p is BlockRecord => p.kind === 'block');
      await policies.putBlock('renewed', { cidr: '10.0.0.0/8', ttl: 60 });
      assert.equal(await policies.sweepExpired(seen), 1);
      assert.deepEqual((await store.listPolicies()).map((p) => (p.kind === 'block' ? p.id : p.kind)).sort(), ['forever', 'renewed']);
    });

    it('does not move the route table when a policy write is refused, and moves it by one for each accepted one', async () => {
      const v = (await store.version()).version;
      await api.call('PUT', '/v1/blocks/b1', { json: { cidr: 'nope' } });
      assert.equal((await store.version()).version, v);
      await api.call('PUT', '/v1/blocks/b1', { json: { cidr: '10.0.0.0/8' } });
      assert.equal((await store.version()).version, v + 1);
    });
  });
}

