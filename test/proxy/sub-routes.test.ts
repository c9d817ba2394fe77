import assert from 'node:assert/strict';
import type { Backend as BackendRecord } from '../../src/registry/types';
import { RouteTable } from '../../src/table/route-table';
import { subRouteOf } from '../../src/table/sub-routes';
import { StaticRoutes, assignment, backend, request, snapshot, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend, type Backend } from '../support/backend';
import { capturingLogger } from '../support/logs';

const prefixed = (tool: string, id: string, url: string, prefix: string): BackendRecord => ({ ...backend(tool, id, url), prefix });

describe('sub-routes: a backend registered with a path prefix', () => {
  it('takes the requests under the longest prefix that matches; the rest go to the backends without one', () => {
    const t = tableOf([
      backend('web', 'root', 'http://127.0.0.1:4000'),
      prefixed('web', 'api', 'http://127.0.0.1:4001', '/api'),
      prefixed('web', 'v2', 'http://127.0.0.1:4002', '/api/v2'),
      prefixed('web', 'api-b', 'http://127.0.0.1:4003', '/api'),
    ]);
    const route = t.lookup('web')!;
    const ids = (url: string, byPath = true) => subRouteOf(route, url, byPath).backends.map((b) => b.id);
    assert.deepEqual(ids('/web/api/x'), ['api', 'api-b']);
    assert.deepEqual(ids('/web/api'), ['api', 'api-b']);
    assert.deepEqual(ids('/web/api?q=1'), ['api', 'api-b']);
    assert.deepEqual(ids('/web/api/v2/items'), ['v2']);
    assert.deepEqual(ids('/web/api/v20'), ['api', 'api-b']);
    assert.deepEqual(ids('/web/apix'), ['root']);
    assert.deepEqual(ids('/web/'), ['root']);
    assert.deepEqual(ids('/api/v2/x', false), ['v2'], 'routed by Host: the whole path');
    assert.equal(subRouteOf(route, '/web/api/x', true), subRouteOf(route, '/web/api/y', true), 'made once per list of backends');
    const plain = tableOf([backend('solo', 's', 'http://127.0.0.1:4000')]).lookup('solo')!;
    assert.equal(subRouteOf(plain, '/solo/api', true), plain, 'a tool without prefixes is its own route');
  });

  it('keeps a prefix through a build, a change and a renewal, and a changed prefix is a routing change', () => {
    const t = RouteTable.fromSnapshot(snapshot([prefixed('solo', 'a', 'http://127.0.0.1:4000', '/api')]));
    assert.equal(t.lookup('solo')!.backends[0].prefix, '/api', 'a single prefixed backend keeps its prefix');
    const renewed = t.withChanges([{ epoch: 'e1', version: 2, changes: [{ kind: 'backend.upsert', backend: prefixed('solo', 'a', 'http://127.0.0.1:4000', '/api') }] }]);
    assert.equal(renewed.lookup('solo'), t.lookup('solo'), 'a renewal keeps the route');
    const moved = renewed.withChanges([{ epoch: 'e1', version: 3, changes: [{ kind: 'backend.upsert', backend: prefixed('solo', 'a', 'http://127.0.0.1:4000', '/v2') }] }]);
    assert.equal(moved.lookup('solo')!.backends[0].prefix, '/v2');
    const cleared = moved.withChanges([{ epoch: 'e1', version: 4, changes: [{ kind: 'backend.upsert', backend: backend('solo', 'a', 'http://127.0.0.1:4000') }] }]);
    assert.equal(cleared.lookup('solo')!.backends[0].prefix, null);
  });
});

describe('sub-routes at the proxy', () => {
  let root: Backend;
  let api: Backend;
  let p: TestProxy;
  const routes = new StaticRoutes();
  const logs = capturingLogger('info');

  before(async () => {
    root = await startBackend('root');
    api = await startBackend('api');
    // `only` holds a port: a request for a path none of its backends takes must not be held or healed
    // onto the backends it has.
    routes.set(tableOf([backend('web', 'r', root.url), prefixed('web', 'a', api.url, '/api'), prefixed('only', 'o', api.url, '/api')], [assignment('only', api.port)]));
    p = await startProxy(routes, testConfig({ holdMs: 5000, accessLog: true }, { domain: 'example.test' }), { logger: logs.logger });
  });
  after(async () => {
    await p.close();
    await Promise.all([root.close(), api.close()]);
  });

  it('sends /<tool>/api/ and <tool>.<domain>/api/ to the prefixed backends, the rest to the others', async () => {
    assert.equal((await request(p.port, '/web/api/items')).body, 'api /web/api/items');
    assert.equal((await request(p.port, '/web/other')).body, 'root /web/other');
    assert.equal((await request(p.port, '/api/items', { headers: { host: 'web.example.test' } })).body, 'api /api/items');
    assert.equal((await request(p.port, '/', { headers: { host: 'web.example.test' } })).body, 'root /');
  });

  it('keeps the 301 of a bare /<tool>, and answers 503 for a path no backend takes', async () => {
    const bare = await request(p.port, '/web');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/web/');
    assert.equal((await request(p.port, '/only/api/x')).body, 'api /only/api/x');
    const none = await request(p.port, '/only/elsewhere');
    assert.equal(none.status, 503);
    const line = logs.events('access').find((l) => l.requestId === none.headers['x-request-id']);
    assert.equal(line?.outcome, 'not_running');
    assert.equal(line?.hold, undefined, 'not held: no backend would come for that path');
  });
});
