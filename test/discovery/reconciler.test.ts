import assert from 'node:assert/strict';
import type { Switchboard } from '../../src/app';
import type { Store } from '../../src/registry/store';
import { storeKinds } from '../registry/harness';
import { api, controlUrl, loseRegistration, startInProcess, toolServer, type ToolServer } from './helpers';
import { waitFor } from '../support/wait';
import { deadPort } from '../support/backend';
import { capturingLogger, CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';

for (const kind of storeKinds()) {
  describe(`the reconciler (${kind.name} store)`, function () {
    this.timeout(30_000);
    let store: Store;
    let sb: Switchboard;
    let base: string;
    let logs: CapturedLogs;
    const servers: ToolServer[] = [];
    const tool = async (name: string) => {
      const t = await toolServer(name);
      servers.push(t);
      return t;
    };

    before(() => kind.before());
    after(() => kind.after());
    beforeEach(async () => {
      store = await kind.create();
    });
    afterEach(async () => {
      await sb?.stop();
      await store.close();
      for (const s of servers.splice(0)) await s.close();
    });

    /** A registry alone: no proxy, so no request can trigger anything. */
    async function registry(reconcileIntervalMs: number) {
      logs = capturingLogger('info');
      sb = await startInProcess(store, { roles: { proxy: false, registry: true }, discovery: { reconcileIntervalMs }, logger: logs.logger });
      base = controlUrl(sb);
      await waitFor('leadership', async () => sb.leadership!.isLeader);
    }
    const heals = async () => metricValue(await sb.metrics.registry.metrics(), 'switchboard_selfheal_total', { trigger: 'reconcile' });
    const backendsOf = async (name: string) => (await api(base, 'GET', `/v1/tools/${name}`)).body.backends as Array<Record<string, any>>;

    it('heals a running tool without a registration with no traffic at all, on its interval', async () => {
      await registry(200);
      const alpha = await tool('alpha');
      await loseRegistration(base, 'alpha', alpha.url);
      const [b] = await waitFor('the reconciler to heal alpha', async () => {
        const list = await backendsOf('alpha');
        return list.length === 1 ? list : null;
      });
      assert.equal(b.source, 'discovered');
      assert.equal(b.url, alpha.url);
      assert.equal(await heals(), 1);
      const lines = logs.events('selfheal');
      assert.equal(lines.length, 1);
      assert.deepEqual([lines[0].tool, lines[0].address, lines[0].trigger], ['alpha', `127.0.0.1:${alpha.port}`, 'reconcile']);
      assert.equal(alpha.served, 0);

      // Later rounds renew the lease of the discovered backend; they are not new heals.
      await waitFor('a renewal', async () => (await backendsOf('alpha'))[0]?.lastHeartbeat !== b.lastHeartbeat);
      assert.equal(await heals(), 1);
    });

    it('drops a discovered backend that stops answering, and heals it again when it is back', async () => {
      await registry(3_600_000);
      const beta = await tool('beta');
      await loseRegistration(base, 'beta', beta.url);
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 1, healed: 1, renewed: 0, dropped: 0 });
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 1, dropped: 0 });

      await beta.close();
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 0, dropped: 1 });
      assert.deepEqual(await backendsOf('beta'), []);
      const dropped = logs.events('discovery.dropped');
      assert.equal(dropped.length, 1);
      assert.equal(dropped[0].tool, 'beta');
      // Down: probed every round, nothing written.
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 1, healed: 0, renewed: 0, dropped: 0 });

      await beta.restart();
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 1, healed: 1, renewed: 0, dropped: 0 });
      assert.equal(await heals(), 2);
      assert.equal(logs.events('selfheal').length, 2);
    });

    it('leaves registered tools alone and drops a discovered backend whose assignment was released', async () => {
      await registry(3_600_000);
      const reg = await tool('gamma');
      assert.equal((await api(base, 'PUT', '/v1/tools/gamma/backends/g1', { url: reg.url })).status, 200);
      const delta = await tool('delta');
      await loseRegistration(base, 'delta', delta.url);
      const dead = await deadPort();
      await loseRegistration(base, 'eps', `http://127.0.0.1:${dead}`);

      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 2, healed: 1, renewed: 0, dropped: 0 });
      assert.equal(reg.connections, 0);
      assert.equal((await api(base, 'DELETE', `/v1/ports/127.0.0.1/${delta.port}`)).status, 204);
      const round = await sb.reconciler!.runOnce();
      assert.equal(round.dropped, 1);
      assert.equal(round.healed, 0);
      assert.deepEqual(await api(base, 'GET', '/v1/tools/delta').then((r) => r.status), 404);
      assert.equal(logs.events('discovery.dropped')[0].reason, 'its assignment is gone');
      // The released port stays released: no discovered backend brought its assignment back.
      const ports = (await api(base, 'GET', '/v1/ports')).body.assignments as Array<{ port: number }>;
      assert.ok(!ports.some((a) => a.port === delta.port));
    });

    it('a registration supersedes a discovered backend of the same url', async () => {
      await registry(3_600_000);
      const zeta = await tool('zeta');
      await loseRegistration(base, 'zeta', zeta.url);
      assert.equal((await sb.reconciler!.runOnce()).healed, 1);
      assert.equal((await api(base, 'PUT', '/v1/tools/zeta/backends/z1', { url: zeta.url })).status, 200);
      const list = await backendsOf('zeta');
      assert.deepEqual(
        list.map((b) => [b.id, b.source]),
        [['z1', 'registered']],
      );
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 0, dropped: 0 });
    });

    it('leaves a registration that names its host alone: it stands on the assignments of its addresses', async () => {
      await registry(3_600_000);
      const named = await tool('named');
      const url = `http://localhost:${named.port}`;
      assert.equal((await api(base, 'PUT', '/v1/tools/named/backends/n1', { url })).status, 200);
      // The assignments are keyed by address; without resolving the url the reconciler would see them bare,
      // probe them and add a discovered backend of the same server beside the registration.
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 0, dropped: 0 });
      assert.deepEqual((await backendsOf('named')).map((b) => [b.url, b.source]), [[url, 'registered']]);
      assert.equal(named.connections, 0);
    });

    it('does nothing while this process does not lead', async () => {
      await registry(3_600_000);
      const eta = await tool('eta');
      await loseRegistration(base, 'eta', eta.url);
      await sb.leadership!.stop();
      assert.deepEqual(await sb.reconciler!.runOnce(), { probed: 0, healed: 0, renewed: 0, dropped: 0 });
      assert.equal(eta.connections, 0);
    });
  });
}
