import assert from 'node:assert/strict';
import type { Store } from '../../src/registry/store';
import { startApi, storeKinds, type Api } from './harness';

/**
 * A tool token registers its tool only on ports the tool holds, or on ports of the configured range (the
 * heartbeat then assigns them); any other port needs the admin token. Otherwise a tool token could route
 * its tool to any free port of the machine. Through the heartbeat fast path and through express alone.
 */

const RANGE = { min: 47000, max: 47002 };
const OUTSIDE = 40000;

for (const kind of storeKinds()) {
  describe(`a tool token registers only ports of its tool or of the port range (${kind.name} store)`, function () {
    this.timeout(20_000);
    before(() => kind.before());
    after(() => kind.after());

    for (const fastPath of [true, false]) {
      describe(fastPath ? 'heartbeat fast path' : 'express alone', () => {
        let store: Store;
        let api: Api;
        let echo: string;

        beforeEach(async () => {
          store = await kind.create();
          api = await startApi({ store, fastPath, overrides: { ports: RANGE } });
          const issued = await api.call('POST', '/v1/tools/echo/tokens');
          assert.equal(issued.status, 201, issued.text);
          echo = issued.body.token;
        });
        afterEach(async () => {
          await api.close();
          await store.close();
        });

        const put = (url: string) => api.call('PUT', '/v1/tools/echo/backends/e1', { token: echo, json: { url } });
        const listed = async () => (await store.listAssignments()).map((a) => `${a.tool}@${a.host}:${a.port}`).sort();

        it('refuses a port outside the range that its tool does not hold: 403 naming url and why, nothing changes', async () => {
          const before = await store.snapshot();
          const r = await put(`http://127.0.0.1:${OUTSIDE}`);
          assert.equal(r.status, 403, r.text);
          assert.equal(r.body.error.code, 'port_not_assigned');
          assert.equal(r.body.error.field, 'url');
          assert.match(r.body.error.message, /ports assigned to its tool or inside ports\.min\.\.ports\.max \(47000\.\.47002\)/);
          assert.match(r.body.error.message, /127\.0\.0\.1:40000/);
          assert.match(r.body.error.message, /admin token/);
          const after = await store.snapshot();
          assert.equal(after.version, before.version);
          assert.deepEqual(after.backends, []);
          assert.deepEqual(after.assignments, []);
          if (api.heartbeats) assert.equal(api.heartbeats.answered, 1, 'the fast path answered it');
        });

        it('registers a port of the range, which the heartbeat assigns to the tool', async () => {
          const r = await put(`http://127.0.0.1:${RANGE.min + 1}`);
          assert.equal(r.status, 200, r.text);
          assert.deepEqual(await listed(), [`echo@127.0.0.1:${RANGE.min + 1}`]);
        });

        it('registers a port outside the range once an admin heartbeat assigned it to the tool', async () => {
          const seeded = await api.call('PUT', '/v1/tools/echo/backends/seed', { json: { url: `http://127.0.0.1:${OUTSIDE}` } });
          assert.equal(seeded.status, 200, seeded.text);
          assert.equal((await api.call('DELETE', '/v1/tools/echo/backends/seed')).status, 204);
          const r = await put(`http://127.0.0.1:${OUTSIDE}`);
          assert.equal(r.status, 200, r.text);
          assert.deepEqual(await listed(), [`echo@127.0.0.1:${OUTSIDE}`]);
          // Another tool's port stays a conflict, whatever the range.
          const other = await api.call('POST', '/v1/tools/other/tokens');
          const taken = await api.call('PUT', '/v1/tools/other/backends/o1', { token: other.body.token, json: { url: `http://127.0.0.1:${OUTSIDE}` } });
          assert.equal(taken.status, 409, taken.text);
          assert.equal(taken.body.error.code, 'port_conflict');
        });
      });
    }
  });
}
