import assert from 'node:assert/strict';
import type { Switchboard } from '../../src/app';
import { MemoryStore } from '../../src/registry/memory-store';
import { compileComponent, componentsAjv } from '../../src/registry/validate';
import type { Store } from '../../src/registry/store';
import { storeKinds } from '../registry/harness';
import { api, controlUrl, loseRegistration, startInProcess, toolServer, type ToolServer } from './helpers';
import { waitFor } from '../support/wait';
import { deadPort } from '../support/backend';
import { capturingLogger, CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';

const ajv = componentsAjv();
// Typed loosely: the answers are read field by field after the schema check.
const backendSchema = compileComponent<any>(ajv, 'Backend');
const errorSchema = compileComponent<any>(ajv, 'Error');

for (const kind of storeKinds()) {
  describe(`POST /v1/tools/{tool}/discoveries (${kind.name} store)`, function () {
    this.timeout(30_000);
    let store: Store;
    let sb: Switchboard;
    let base: string;
    let logs: CapturedLogs;
    let alpha: ToolServer;

    before(() => kind.before());
    after(() => kind.after());
    beforeEach(async () => {
      store = await kind.create();
      logs = capturingLogger('info');
      sb = await startInProcess(store, { roles: { proxy: false, registry: true }, logger: logs.logger });
      base = controlUrl(sb);
      alpha = await toolServer('alpha');
      await loseRegistration(base, 'alpha', alpha.url);
    });
    afterEach(async () => {
      await sb.stop();
      await store.close();
      await alpha.close();
    });

    const report = (tool: string, body: unknown, token?: string | null) => api(base, 'POST', `/v1/tools/${tool}/discoveries`, body, token);
    const heals = async () => metricValue(await sb.metrics.registry.metrics(), 'switchboard_selfheal_total', { trigger: 'request' });

    it('heals an assignment that answers the registry\'s own probe: 201, then 200 for the same report', async () => {
      const first = await report('alpha', { host: '127.0.0.1', port: alpha.port });
      assert.equal(first.status, 201, first.text);
      assert.ok(backendSchema(first.body), JSON.stringify(backendSchema.errors));
      assert.equal(first.body.source, 'discovered');
      assert.equal(first.body.url, alpha.url);
      // The registry probed the tool itself: one connection that sent nothing.
      await waitFor('the registry\'s probe to close', async () => alpha.silent === 1);
      const again = await report('alpha', { host: '127.0.0.1', port: alpha.port });
      assert.equal(again.status, 200);
      assert.equal(again.body.id, first.body.id);
      assert.equal(await heals(), 1);
      assert.equal(logs.events('selfheal').length, 1);
      const tool = await api(base, 'GET', '/v1/tools/alpha');
      assert.deepEqual(
        tool.body.backends.map((b: { source: string }) => b.source),
        ['discovered'],
      );
    });

    it('a tool token may report its own tool only', async () => {
      const issued = await api(base, 'POST', '/v1/tools/alpha/tokens');
      const other = await api(base, 'POST', '/v1/tools/beta/tokens');
      assert.equal((await report('alpha', { host: '127.0.0.1', port: alpha.port }, other.body.token)).status, 403);
      assert.equal((await report('alpha', { host: '127.0.0.1', port: alpha.port }, issued.body.token)).status, 201);
      assert.equal((await report('alpha', { host: '127.0.0.1', port: alpha.port }, null)).status, 401);
    });

    it('refuses what is not an assignment of the tool, and what does not answer', async () => {
      const port = await deadPort();
      await loseRegistration(base, 'beta', `http://127.0.0.1:${port}`);
      const cases: Array<[string, unknown, number, string]> = [
        ['alpha', { host: '127.0.0.2', port: alpha.port }, 404, 'no_such_assignment'],
        ['beta', { host: '127.0.0.1', port: alpha.port }, 404, 'no_such_assignment'],
        ['gamma', { host: '127.0.0.1', port: alpha.port }, 404, 'no_such_assignment'],
        ['beta', { host: '127.0.0.1', port }, 409, 'not_answering'],
        ['alpha', { host: '127.0.0.1' }, 400, 'missing_field'],
        ['alpha', { host: '127.0.0.1', port: 0 }, 400, 'out_of_range'],
        ['alpha', { host: '127.0.0.1', port: alpha.port, url: 'http://169.254.169.254/' }, 400, 'unknown_field'],
        ['alpha', { host: 'not a host', port: alpha.port }, 400, 'invalid_host'],
        ['Alpha', { host: '127.0.0.1', port: alpha.port }, 400, 'invalid_value'],
      ];
      for (const [tool, body, status, code] of cases) {
        const r = await report(tool, body);
        assert.equal(r.status, status, `${tool} ${JSON.stringify(body)}: ${r.text}`);
        assert.ok(errorSchema(r.body), r.text);
        assert.equal(r.body.error.code, code, r.text);
      }
      assert.equal(await heals(), 0, 'no heal counted (the series is exported at 0 from the start)');
      const tool = await api(base, 'GET', '/v1/tools/beta');
      assert.deepEqual(tool.body.backends, []);
    });

    it('a registered backend on that address wins: 409 registered_exists', async () => {
      const put = await api(base, 'PUT', '/v1/tools/alpha/backends/a1', { url: alpha.url });
      assert.equal(put.status, 200);
      const r = await report('alpha', { host: '127.0.0.1', port: alpha.port });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'registered_exists');
    });
  });
}

describe('POST /v1/tools/{tool}/discoveries with discovery off', () => {
  it('answers 409 discovery_disabled', async () => {
    const store = new MemoryStore();
    const sb = await startInProcess(store, { roles: { proxy: false, registry: true }, discovery: { enabled: false } });
    const alpha = await toolServer('alpha');
    try {
      await loseRegistration(controlUrl(sb), 'alpha', alpha.url);
      const r = await api(controlUrl(sb), 'POST', '/v1/tools/alpha/discoveries', { host: '127.0.0.1', port: alpha.port });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'discovery_disabled');
      assert.equal(alpha.connections, 0);
    } finally {
      await sb.stop();
      await store.close();
      await alpha.close();
    }
  });
});
