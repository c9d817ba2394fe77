import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Store } from '../../src/registry/store';
import type { TableSnapshot } from '../../src/registry/types';
import type { Lookup } from '../../src/registry/url-policy';
import { ADMIN_TOKEN, startApi, storeKinds, type Api } from './harness';
import { waitFor, sleep } from '../support/wait';
import { startBackend } from '../support/backend';

/** Names the tests resolve without touching real DNS. */
const NAMES: Record<string, string[]> = {
  'backend.test': ['127.0.0.1'],
  'localhost': ['127.0.0.1', '::1'],
  'mixed.test': ['127.0.0.1', '8.8.8.8'],
  'metadata.test': ['169.254.169.254'],
};
const lookup: Lookup = async (name) => {
  const found = NAMES[name];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return found;
};

/** Everything stored that a request could change, in a comparable form. */
async function state(store: Store): Promise<{ snapshot: TableSnapshot }> {
  return { snapshot: await store.snapshot() };
}

for (const kind of storeKinds()) {
  describe(`registration API (${kind.name} store)`, () => {
    let store: Store;
    let api: Api;
    let b1: Awaited<ReturnType<typeof startBackend>>;
    let b2: Awaited<ReturnType<typeof startBackend>>;

    before(async function () {
      this.timeout(15_000);
      await kind.before();
      b1 = await startBackend('ok');
      b2 = await startBackend('ok');
    });

    after(async () => {
      await b1?.close();
      await b2?.close();
      await kind.after();
    });

    beforeEach(async () => {
      store = await kind.create();
      api = await startApi({ store, lookup });
    });

    afterEach(async () => {
      await api.close();
      await store.close();
    });

    const put = (tool: string, id: string, json: unknown) => api.call('PUT', `/v1/tools/${tool}/backends/${id}`, { json });

    describe('heartbeats', () => {
      it('registers a backend and answers the stored lease', async () => {
        const r = await put('alpha', 'a1', { url: b1.url, ttl: 60, clientVersion: 'client/1.2.0' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.tool, 'alpha');
        assert.equal(r.body.id, 'a1');
        assert.equal(r.body.url, b1.url);
        assert.equal(r.body.source, 'registered');
        assert.equal(r.body.ttl, 60);
        assert.equal(r.body.clientVersion, 'client/1.2.0');
        assert.ok(r.body.leaseSecondsLeft >= 59 && r.body.leaseSecondsLeft <= 60, String(r.body.leaseSecondsLeft));
        for (const k of ['registeredAt', 'lastHeartbeat', 'expiresAt']) {
          assert.equal(new Date(r.body[k]).toISOString(), r.body[k], k);
        }
        assert.equal(Date.parse(r.body.expiresAt) - Date.parse(r.body.lastHeartbeat), 60_000);

        const stored = await store.getBackends('alpha');
        assert.equal(stored.length, 1);
        assert.equal(stored[0].url, b1.url);
        assert.deepEqual(
          (await store.listAssignments()).map((a) => [a.tool, a.host, a.port]),
          [['alpha', '127.0.0.1', b1.port]],
        );
      });

      it('accepts the minimal body an old client sends, with the default TTL', async () => {
        const r = await put('alpha', 'a1', { url: b1.url });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.ttl, api.config.leases.defaultTtlSeconds);
        assert.equal('clientVersion' in r.body, false);
      });

      it('stores the origin: a trailing "/" and an explicit default port are normalised', async () => {
        const r = await put('alpha', 'a1', { url: `${b1.url}/` });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.url, b1.url);
        const d = await put('beta', 'b1', { url: 'http://127.0.0.2:80' });
        assert.equal(d.status, 200, d.text);
        assert.equal(d.body.url, 'http://127.0.0.2');
      });

      it('renewing keeps registeredAt and moves the lease forward', async () => {
        const first = await put('alpha', 'a1', { url: b1.url, ttl: 30 });
        assert.equal(first.status, 200, first.text);
        await sleep(15);
        const again = await put('alpha', 'a1', { url: b1.url, ttl: 30 });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.body.registeredAt, first.body.registeredAt);
        assert.ok(Date.parse(again.body.lastHeartbeat) > Date.parse(first.body.lastHeartbeat));
        assert.ok(Date.parse(again.body.expiresAt) > Date.parse(first.body.expiresAt));
        const text = await api.metrics.registry.getSingleMetricAsString('switchboard_registrations_total');
        assert.match(text, /result="created"} 1\b/);
        assert.match(text, /result="renewed"} 1\b/);
      });

      it('resolves a DNS name and keys the assignment by its address, keeping the name in the url', async () => {
        const r = await put('alpha', 'a1', { url: `http://backend.test:${b1.port}` });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.url, `http://backend.test:${b1.port}`);
        assert.deepEqual((await store.listAssignments()).map((a) => [a.host, a.port]), [['127.0.0.1', b1.port]]);
      });

      it('deregisters: 204, then 404; the port assignment stays with the tool', async () => {
        assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
        const del = await api.call('DELETE', '/v1/tools/alpha/backends/a1');
        assert.equal(del.status, 204);
        assert.equal(del.text, '');
        const again = await api.call('DELETE', '/v1/tools/alpha/backends/a1');
        assert.equal(again.status, 404);
        assert.equal(again.body.error.code, 'no_such_backend');
        const tool = await api.call('GET', '/v1/tools/alpha');
        assert.equal(tool.status, 200);
        assert.deepEqual(tool.body.backends, []);
        assert.equal(tool.body.assignments.length, 1);
      });

      it('stores the instance of the newest heartbeat (also through the fast path); DELETE ?instance= removes only what that instance holds', async () => {
        const answeredBefore = api.heartbeats?.answered ?? 0;
        const first = await put('alpha', 'a1', { url: b1.url, instance: 'run-old-0001' });
        assert.equal(first.status, 200, first.text);
        assert.equal(first.body.instance, 'run-old-0001');
        assert.ok(api.heartbeats === null || api.heartbeats.answered > answeredBefore, 'answered by the fast path');
        // A new run of the same backend id (an overlapping deploy): its heartbeat takes the lease over.
        const taken = await put('alpha', 'a1', { url: b1.url, instance: 'run-new-0002' });
        assert.equal(taken.status, 200, taken.text);
        assert.equal(taken.body.instance, 'run-new-0002');
        const listed = await api.call('GET', '/v1/tools/alpha');
        assert.equal(listed.body.backends[0].instance, 'run-new-0002');

        const refused = await api.call('DELETE', '/v1/tools/alpha/backends/a1?instance=run-old-0001');
        assert.equal(refused.status, 409, refused.text);
        assert.equal(refused.body.error.code, 'instance_mismatch');
        assert.equal(refused.body.error.field, 'instance');
        assert.deepEqual((await store.getBackends('alpha')).map((b) => b.instance), ['run-new-0002'], 'nothing removed');
        assert.equal((await api.call('DELETE', '/v1/tools/alpha/backends/a1?instance=run-new-0002')).status, 204);
        assert.deepEqual(await store.getBackends('alpha'), []);
        assert.equal((await api.call('DELETE', '/v1/tools/alpha/backends/a1?instance=run-new-0002')).status, 404);
        // Without ?instance= the backend goes whoever registered it (admin tooling, older clients).
        assert.equal((await put('alpha', 'a1', { url: b1.url, instance: 'run-new-0002' })).status, 200);
        assert.equal((await api.call('DELETE', '/v1/tools/alpha/backends/a1')).status, 204);
      });

      it('lists tools with their backends and assignments', async () => {
        assert.equal((await put('beta', 'b1', { url: b2.url, clientVersion: 'v2' })).status, 200);
        assert.equal((await put('alpha', 'a2', { url: b1.url })).status, 200);
        assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
        const r = await api.call('GET', '/v1/tools');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.tools.map((t: { tool: string }) => t.tool), ['alpha', 'beta']);
        const alpha = r.body.tools[0];
        assert.deepEqual(alpha.backends.map((b: { id: string }) => b.id), ['a1', 'a2']);
        assert.equal(alpha.backends[0].source, 'registered');
        assert.ok(alpha.backends[0].leaseSecondsLeft > 0);
        assert.deepEqual(alpha.assignments.map((a: { port: number }) => a.port), [b1.port]);

        const one = await api.call('GET', '/v1/tools/beta');
        assert.equal(one.status, 200);
        assert.deepEqual(one.body, r.body.tools[1]);

        const none = await api.call('GET', '/v1/tools/gamma');
        assert.equal(none.status, 404);
        assert.equal(none.body.error.code, 'no_such_tool');
        assert.equal(none.body.error.field, 'tool');
      });

      it('counts stored backends per client version for switchboard_client_versions', async () => {
        assert.equal((await put('alpha', 'a1', { url: b1.url, clientVersion: 'v1' })).status, 200);
        assert.equal((await put('alpha', 'a2', { url: b1.url, clientVersion: 'v1' })).status, 200);
        assert.equal((await put('beta', 'b1', { url: b2.url })).status, 200);
        const text = await api.metrics.registry.getSingleMetricAsString('switchboard_client_versions');
        assert.match(text, /switchboard_client_versions\{version="v1"\} 2\b/);
        assert.match(text, /switchboard_client_versions\{version="unknown"\} 1\b/);
      });

      it('stores and shows the restarts count of a heartbeat, and exports the largest per tool as switchboard_backend_restarts', async () => {
        const r = await put('alpha', 'a1', { url: b1.url, restarts: 2 });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.restarts, 2);
        assert.equal((await put('alpha', 'a2', { url: b1.url, restarts: 5 })).status, 200);
        assert.equal((await put('beta', 'b1', { url: b2.url, restarts: 0 })).status, 200);
        const listed = await api.call('GET', '/v1/tools/alpha');
        assert.deepEqual(listed.body.backends.map((b: { restarts?: number }) => b.restarts), [2, 5]);
        const text = await api.metrics.registry.getSingleMetricAsString('switchboard_backend_restarts');
        assert.match(text, /switchboard_backend_restarts\{tool="alpha"\} 5\b/);
        assert.doesNotMatch(text, /tool="beta"/, 'a tool that never restarted has no series');
      });

      it('stores and shows a sub-route prefix, and refuses a malformed one naming the field', async () => {
        const r = await put('alpha', 'a1', { url: b1.url, prefix: '/api/v2' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.prefix, '/api/v2');
        for (const prefix of ['api', '/api/', '/a b', '//x', '/' + 'x'.repeat(256)]) {
          const bad = await put('alpha', 'a1', { url: b1.url, prefix });
          assert.equal(bad.status, 400, prefix);
          assert.equal(bad.body.error.field, 'prefix', prefix);
        }
        assert.equal((await api.call('GET', '/v1/tools/alpha')).body.backends[0].prefix, '/api/v2', 'a refused heartbeat changes nothing');
      });

      it('answers 404 JSON for unknown routes under /v1', async () => {
        for (const [method, path] of [
          ['GET', '/v1/nothing'],
          ['POST', '/v1/tools'],
          ['PATCH', '/v1/tools/alpha/backends/a1'],
        ]) {
          const r = await api.call(method, path);
          assert.equal(r.status, 404, `${method} ${path}`);
          assert.equal(r.body.error.code, 'not_found');
        }
      });
    });

    describe('ports', () => {
      it('allocates the lowest free port, idempotently per tool and host, and lists and releases', async () => {
        const a = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
        assert.equal(a.status, 200, a.text);
        assert.deepEqual([a.body.tool, a.body.host, a.body.port], ['alpha', '127.0.0.1', 47000]);
        const again = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
        assert.equal(again.body.port, 47000);
        const b = await api.call('POST', '/v1/ports', { json: { tool: 'beta', host: '127.0.0.1' } });
        assert.equal(b.body.port, 47001);

        const list = await api.call('GET', '/v1/ports');
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.assignments.map((x: { tool: string; port: number }) => [x.tool, x.port]), [
          ['alpha', 47000],
          ['beta', 47001],
        ]);

        assert.equal((await api.call('DELETE', '/v1/ports/127.0.0.1/47000')).status, 204);
        const gone = await api.call('DELETE', '/v1/ports/127.0.0.1/47000');
        assert.equal(gone.status, 404);
        assert.equal(gone.body.error.code, 'no_such_assignment');
        assert.deepEqual((await store.listAssignments()).map((x) => x.port), [47001]);
      });

      it('spells IPv6 hosts one way: [::1] and ::1 are the same host', async () => {
        const a = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '[::1]' } });
        assert.equal(a.status, 200, a.text);
        assert.equal(a.body.host, '::1');
        const b = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '0:0:0:0:0:0:0:1' } });
        assert.equal(b.body.port, a.body.port);
        assert.equal((await api.call('DELETE', `/v1/ports/::1/${a.body.port}`)).status, 204);
      });

      it('answers port_range_exhausted when the range is full, changing nothing', async () => {
        for (const tool of ['t1', 't2', 't3']) {
          assert.equal((await api.call('POST', '/v1/ports', { json: { tool, host: '127.0.0.1' } })).status, 200);
        }
        const before = await state(store);
        const r = await api.call('POST', '/v1/ports', { json: { tool: 't4', host: '127.0.0.1' } });
        assert.equal(r.status, 503, r.text);
        assert.equal(r.body.error.code, 'port_range_exhausted');
        assert.deepEqual(await state(store), before);
      });

      it('refuses with 409 a heartbeat on a port another tool holds', async () => {
        assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
        const held = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
        const before = await state(store);
        for (const url of [b1.url, `http://127.0.0.1:${held.body.port}`, `http://[::ffff:127.0.0.1]:${b1.port}`]) {
          const r = await put('beta', 'b1', { url });
          assert.equal(r.status, 409, `${url}: ${r.text}`);
          assert.equal(r.body.error.code, 'port_conflict');
          assert.equal(r.body.error.field, 'url');
        }
        assert.deepEqual(await state(store), before);
        const text = await api.metrics.registry.getSingleMetricAsString('switchboard_registrations_total');
        assert.match(text, /result="conflict"} 3\b/);
      });

      it('a heartbeat re-creates a missing assignment', async () => {
        assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
        assert.equal((await api.call('DELETE', `/v1/ports/127.0.0.1/${b1.port}`)).status, 204);
        assert.deepEqual(await store.listAssignments(), []);
        assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
        const list = await api.call('GET', '/v1/ports');
        assert.deepEqual(list.body.assignments.map((x: { tool: string; host: string; port: number }) => [x.tool, x.host, x.port]), [
          ['alpha', '127.0.0.1', b1.port],
        ]);
      });
    });

    describe('bad input changes nothing', () => {
      // Seeded state that every refused request must leave exactly as it was.
      beforeEach(async () => {
        assert.equal((await put('alpha', 'a0', { url: b1.url, clientVersion: 'v1' })).status, 200);
        assert.equal((await api.call('POST', '/v1/ports', { json: { tool: 'beta', host: '127.0.0.1' } })).status, 200);
      });

      interface Case {
        method?: string;
        path?: string;
        json?: unknown;
        raw?: string;
        contentType?: string;
        status: number;
        field: string | null;
        code?: string;
        message?: RegExp;
      }
      const url = () => b2.url;
      const c = (name: string, make: () => Case) => ({ name, make });
      const cases = [
        c('unknown field', () => ({ json: { url: url(), colour: 'red' }, status: 400, field: 'colour', code: 'unknown_field' })),
        c('url of the wrong type', () => ({ json: { url: 5 }, status: 400, field: 'url', code: 'invalid_type' })),
        c('ttl as a string', () => ({ json: { url: url(), ttl: '30' }, status: 400, field: 'ttl', code: 'invalid_type' })),
        c('ttl as a fraction', () => ({ json: { url: url(), ttl: 30.5 }, status: 400, field: 'ttl' })),
        c('clientVersion of the wrong type', () => ({ json: { url: url(), clientVersion: 7 }, status: 400, field: 'clientVersion' })),
        c('clientVersion too long', () => ({ json: { url: url(), clientVersion: 'v'.repeat(65) }, status: 400, field: 'clientVersion' })),
        c('clientVersion not printable', () => ({ json: { url: url(), clientVersion: 'v1\n' }, status: 400, field: 'clientVersion' })),
        c('missing url', () => ({ json: { ttl: 30 }, status: 400, field: 'url', code: 'missing_field' })),
        c('body not an object', () => ({ json: [url()], status: 400, field: null, code: 'invalid_body' })),
        c('no body at all', () => ({ status: 400, field: null })),
        c('bad tool name', () => ({ path: '/v1/tools/Bad_Tool/backends/x1', json: { url: url() }, status: 400, field: 'tool' })),
        c('tool name too long', () => ({ path: `/v1/tools/${'a'.repeat(64)}/backends/x1`, json: { url: url() }, status: 400, field: 'tool' })),
        c('bad backend id', () => ({ path: '/v1/tools/alpha/backends/-x', json: { url: url() }, status: 400, field: 'id' })),
        c('backend id with a space', () => ({ path: '/v1/tools/alpha/backends/a%20b', json: { url: url() }, status: 400, field: 'id' })),
        c('ftp url', () => ({ json: { url: 'ftp://127.0.0.1:2121' }, status: 400, field: 'url' })),
        c('not a URL', () => ({ json: { url: 'localhost:8000' }, status: 400, field: 'url' })),
        c('userinfo', () => ({ json: { url: `http://user:pw@127.0.0.1:${b2.port}` }, status: 400, field: 'url' })),
        c('query', () => ({ json: { url: `${url()}/?x=1` }, status: 400, field: 'url' })),
        c('fragment', () => ({ json: { url: `${url()}#x` }, status: 400, field: 'url' })),
        c('path', () => ({ json: { url: `${url()}/app` }, status: 400, field: 'url' })),
        c('metadata address', () => ({ json: { url: 'http://169.254.169.254' }, status: 400, field: 'url', code: 'url_not_allowed' })),
        c('IPv4-mapped metadata address', () => ({ json: { url: 'http://[::ffff:169.254.169.254]' }, status: 400, field: 'url', code: 'url_not_allowed' })),
        c('IPv4-mapped metadata address in hex', () => ({ json: { url: 'http://[::ffff:a9fe:a9fe]:80' }, status: 400, field: 'url' })),
        c('IPv6 link-local', () => ({ json: { url: 'http://[fe80::1]:8000' }, status: 400, field: 'url' })),
        c('unspecified address', () => ({ json: { url: 'http://0.0.0.0:8000' }, status: 400, field: 'url' })),
        c('public address', () => ({ json: { url: 'http://8.8.8.8' }, status: 400, field: 'url', code: 'url_not_allowed' })),
        c('name resolving to a metadata address', () => ({ json: { url: 'http://metadata.test' }, status: 400, field: 'url' })),
        c('name with one public address', () => ({ json: { url: 'http://mixed.test:8000' }, status: 400, field: 'url' })),
        c('name that does not resolve', () => ({ json: { url: 'http://nowhere.test:8000' }, status: 400, field: 'url', code: 'unresolvable_host' })),
        c('the control port itself', () => ({ json: { url: `http://127.0.0.1:${api.config.control.port}` }, status: 400, field: 'url', code: 'url_not_allowed' })),
        c('the control port by name', () => ({ json: { url: `http://localhost:${api.config.control.port}` }, status: 400, field: 'url' })),
        c('the proxy port', () => ({ json: { url: `http://[::1]:${api.config.proxy.port}` }, status: 400, field: 'url' })),
        c('ttl 4', () => ({ json: { url: url(), ttl: 4 }, status: 400, field: 'ttl', code: 'out_of_range', message: /ttl must be between 5 and 3600/ })),
        c('ttl 3601', () => ({ json: { url: url(), ttl: 3601 }, status: 400, field: 'ttl', code: 'out_of_range' })),
        c('restarts -1', () => ({ json: { url: url(), restarts: -1 }, status: 400, field: 'restarts', code: 'out_of_range', message: /restarts must be between 0 and 1000000000/ })),
        c('restarts as a fraction', () => ({ json: { url: url(), restarts: 1.5 }, status: 400, field: 'restarts', code: 'invalid_type' })),
        c('restarts as a string', () => ({ json: { url: url(), restarts: '2' }, status: 400, field: 'restarts', code: 'invalid_type' })),
        c('17 KiB body', () => ({ json: { url: url(), clientVersion: 'x'.repeat(17 * 1024) }, status: 413, field: null, code: 'body_too_large' })),
        c('malformed JSON', () => ({ raw: `{"url": "${url()}",`, status: 400, field: null, code: 'malformed_json' })),
        c('wrong content type', () => ({ raw: JSON.stringify({ url: url() }), contentType: 'text/plain', status: 415, field: null })),
        c('form content type', () => ({ raw: `url=${url()}`, contentType: 'application/x-www-form-urlencoded', status: 415, field: null })),
        c('port request: unknown field', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha', host: '127.0.0.1', port: 1 }, status: 400, field: 'port' })),
        c('port request: tool of the wrong type', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 5, host: '127.0.0.1' }, status: 400, field: 'tool' })),
        c('port request: bad tool name', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'Alpha', host: '127.0.0.1' }, status: 400, field: 'tool' })),
        c('port request: missing host', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha' }, status: 400, field: 'host' })),
        c('port request: public host', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha', host: '8.8.8.8' }, status: 400, field: 'host' })),
        c('port request: metadata host', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha', host: '::ffff:169.254.169.254' }, status: 400, field: 'host' })),
        c('port request: host that is not a host', () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha', host: 'a b' }, status: 400, field: 'host' })),
        c('port request: malformed JSON', () => ({ method: 'POST', path: '/v1/ports', raw: '{', status: 400, field: null })),
        c('port release: bad port', () => ({ method: 'DELETE', path: '/v1/ports/127.0.0.1/http', status: 400, field: 'port' })),
        c('port release: port 0', () => ({ method: 'DELETE', path: '/v1/ports/127.0.0.1/0', status: 400, field: 'port' })),
        c('port release: bad host', () => ({ method: 'DELETE', path: '/v1/ports/a_b/47000', status: 400, field: 'host' })),
        c('deregister: bad id', () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/_x', status: 400, field: 'id' })),
        c('instance too short', () => ({ json: { url: url(), instance: 'abc' }, status: 400, field: 'instance', code: 'invalid_value', message: /8\.\.64 characters/ })),
        c('instance too long', () => ({ json: { url: url(), instance: 'a'.repeat(65) }, status: 400, field: 'instance', message: /8\.\.64/ })),
        c('instance with a slash', () => ({ json: { url: url(), instance: 'run/00001' }, status: 400, field: 'instance', message: /A-Z a-z 0-9 _ -/ })),
        c('instance of the wrong type', () => ({ json: { url: url(), instance: 12345678 }, status: 400, field: 'instance' })),
        c('deregister: instance too short', () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/a0?instance=abc', status: 400, field: 'instance', message: /8\.\.64/ })),
        c('deregister: instance given twice', () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/a0?instance=run-00001&instance=run-00002', status: 400, field: 'instance' })),
        c('deregister: empty instance', () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/a0?instance=', status: 400, field: 'instance' })),
        c('deregister: a backend no instance holds', () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/a0?instance=run-00001', status: 409, field: 'instance', code: 'instance_mismatch' })),
        c('token issue: bad tool', () => ({ method: 'POST', path: '/v1/tools/-x/tokens', status: 400, field: 'tool' })),
        c('token revoke: bad token id', () => ({ method: 'DELETE', path: '/v1/tools/alpha/tokens/ABC', status: 400, field: 'tokenId' })),
      ];

      for (const { name, make } of cases) {
        it(name, async () => {
          const c = make();
          const before = await state(store);
          const assignmentsBefore = await store.listAssignments();
          const r = await api.call(c.method ?? 'PUT', c.path ?? '/v1/tools/alpha/backends/x1', {
            json: c.json,
            raw: c.raw,
            contentType: c.contentType,
          });
          assert.equal(r.status, c.status, r.text);
          assert.equal(r.body?.error?.field, c.field, r.text);
          if (c.code) assert.equal(r.body.error.code, c.code, r.text);
          if (c.message) assert.match(r.body.error.message, c.message);
          assert.equal(typeof r.body.error.message, 'string');
          assert.deepEqual(await state(store), before);
          assert.deepEqual(await store.listAssignments(), assignmentsBefore);
        });
      }
    });

    if (kind.name === 'redis') {
      describe('store down', () => {
        it('answers 503 store_unavailable with Retry-After, and logs no token', async () => {
          const lines: string[] = [];
          const sink = new Writable({
            write(chunk, _enc, done) {
              lines.push(String(chunk));
              done();
            },
          });
          await api.close();
          api = await startApi({ store, lookup, logger: pino({ level: 'debug' }, sink) });
          assert.equal((await put('alpha', 'a1', { url: b1.url })).status, 200);
          const issued = await api.call('POST', '/v1/tools/alpha/tokens');
          assert.equal(issued.status, 201);
          await kind.redis!.kill();
          try {
            // A tool token must be looked up in the store: that answer is 503 too, not 401.
            const viaToken = await api.call('GET', '/v1/tools/alpha', { token: issued.body.token });
            assert.equal(viaToken.status, 503, viaToken.text);
            assert.equal(viaToken.body.error.code, 'store_unavailable');
            for (const [method, path, json] of [
              ['PUT', '/v1/tools/alpha/backends/a1', { url: b1.url }],
              ['GET', '/v1/tools', undefined],
              ['POST', '/v1/ports', { tool: 'alpha', host: '127.0.0.1' }],
            ] as const) {
              const r = await api.call(method, path, { json });
              assert.equal(r.status, 503, `${method} ${path}: ${r.text}`);
              assert.equal(r.body.error.code, 'store_unavailable');
              assert.ok(Number(r.headers.get('retry-after')) > 0);
            }
            const text = await api.metrics.registry.getSingleMetricAsString('switchboard_registrations_total');
            assert.match(text, /result="unavailable"} 1\b/);
          } finally {
            await kind.redis!.start();
          }
          // A refused write changes nothing, later either: none of them is applied once the store is back (it
          // restarted without its data, so anything in it now was written after the restart).
          const back = await waitFor('the store to answer again', async () => store.snapshot().catch(() => null), 10_000);
          assert.equal((await api.call('GET', '/v1/tools')).status, 200, 'the registry reaches the store again');
          const now = await store.snapshot();
          assert.deepEqual([back.backends, back.assignments, now.backends, now.assignments].map((x) => x.length), [0, 0, 0, 0], JSON.stringify(now));
          const logged = lines.join('');
          assert.match(logged, /store unavailable/);
          assert.equal(logged.includes(ADMIN_TOKEN), false);
          assert.equal(logged.includes(issued.body.token.slice(17)), false);
          assert.equal(/authorization/i.test(logged), false);
        });
      });
    }
  });
}
