import assert from 'node:assert/strict';
import type { Switchboard } from '../../src/app';
import type { Store } from '../../src/registry/store';
import { request } from '../proxy/helpers';
import { storeKinds } from '../registry/harness';
import { api, controlUrl, get, loseRegistration, startInProcess, toolServer, type ToolServer } from './helpers';
import { waitFor } from '../support/wait';
import { deadPort } from '../support/backend';
import { capturingLogger, CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';

async function metrics(sb: Switchboard): Promise<string> {
  return sb.metrics.registry.metrics();
}

/** Waits until the proxy's table shows the tool with its assignment and without a backend. */
async function tableShowsBare(sb: Switchboard, tool: string): Promise<void> {
  await waitFor(`${tool} without backends in the proxy table`, async () => {
    const r = sb.feed?.current()?.lookup(tool);
    return r !== undefined && r.backends.length === 0 && r.assignments.length > 0;
  });
}

for (const kind of storeKinds()) {
  describe(`fallback discovery on the request path (${kind.name} store)`, function () {
    this.timeout(30_000);
    let store: Store;
    let sb: Switchboard;
    let logs: CapturedLogs;
    const servers: ToolServer[] = [];
    const tool = async (name: string, opts: { healthPath?: string } = {}) => {
      const t = await toolServer(name, opts);
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

    async function serve(discovery: Record<string, unknown> = {}) {
      logs = capturingLogger('info');
      sb = await startInProcess(store, { discovery, logger: logs.logger });
      return sb;
    }

    it('the first request to a running tool without a registration is served, and a discovered backend appears', async () => {
      await serve();
      const alpha = await tool('alpha');
      await loseRegistration(controlUrl(sb), 'alpha', alpha.url);
      await tableShowsBare(sb, 'alpha');

      const first = await get(sb.proxyPort!, '/alpha/hello');
      assert.equal(first.status, 200);
      assert.equal(first.text, 'alpha /alpha/hello');

      const entry = await waitFor('the discovered backend', async () => {
        const r = await api(controlUrl(sb), 'GET', '/v1/tools/alpha');
        return r.body?.backends?.length === 1 ? r.body : null;
      });
      assert.equal(entry.backends[0].source, 'discovered');
      assert.equal(entry.backends[0].url, alpha.url);
      assert.equal(entry.backends[0].id, `discovered-127.0.0.1-${alpha.port}`);
      assert.ok(entry.backends[0].leaseSecondsLeft > 0);

      assert.equal(metricValue(await metrics(sb), 'switchboard_selfheal_total', { trigger: 'request' }), 1);
      const heals = logs.events('selfheal');
      assert.equal(heals.length, 1);
      assert.equal(heals[0].tool, 'alpha');
      assert.equal(heals[0].address, `127.0.0.1:${alpha.port}`);
      assert.equal(heals[0].trigger, 'request');

      // Once the table carries the discovered backend, requests are routed without probing.
      await waitFor('the table to route alpha', async () => (sb.feed?.current()?.lookup('alpha')?.backends.length ?? 0) === 1);
      for (let i = 0; i < 5; i++) assert.equal((await get(sb.proxyPort!, '/alpha/again')).status, 200);
      assert.equal(sb.discovery!.probes, 1);
      assert.equal(metricValue(await metrics(sb), 'switchboard_selfheal_total', { trigger: 'request' }), 1);
    });

    it('concurrent requests for one tool wait for a single probe', async () => {
      await serve();
      const beta = await tool('beta');
      await loseRegistration(controlUrl(sb), 'beta', beta.url);
      await tableShowsBare(sb, 'beta');

      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => get(sb.proxyPort!, `/beta/${i}`)));
      assert.deepEqual(
        replies.map((r) => r.status),
        replies.map(() => 200),
      );
      assert.equal(beta.served, 30);
      // The probe is the one connection that sent nothing; every proxied request sent its request line.
      await waitFor('the probe connection to close', async () => beta.silent >= 1);
      assert.equal(beta.silent, 1);
      assert.equal(sb.discovery!.probes, 1);
      await waitFor('the heal to be counted', async () => metricValue(await metrics(sb), 'switchboard_selfheal_total', { trigger: 'request' }) === 1);
      assert.equal(logs.events('selfheal').length, 1);
    });

    it('a dead tool gets the 503 page at once, and is not probed again within the negative-cache window', async () => {
      await serve({ negativeCacheMs: 60_000 });
      const port = await deadPort();
      await loseRegistration(controlUrl(sb), 'gamma', `http://127.0.0.1:${port}`);
      await tableShowsBare(sb, 'gamma');

      const first = await get(sb.proxyPort!, '/gamma/', { accept: 'application/json' });
      assert.equal(first.status, 503);
      assert.equal(first.headers.get('retry-after'), '5');
      assert.equal(JSON.parse(first.text).error.code, 'not_running');
      const more = await Promise.all(Array.from({ length: 20 }, () => get(sb.proxyPort!, '/gamma/')));
      assert.ok(more.every((r) => r.status === 503 && r.headers.get('retry-after') === '5'));
      assert.equal(sb.discovery!.probes, 1);
      const text = await metrics(sb);
      for (const trigger of ['request', 'reconcile']) assert.equal(metricValue(text, 'switchboard_selfheal_total', { trigger }), 0, `no ${trigger} heal`);
    });

    it('with a health path, a tool is up when the path answers 2xx; a failure is remembered, then probed again', async () => {
      await serve({ healthPath: '/healthz', negativeCacheMs: 300 });
      const delta = await tool('delta', { healthPath: '/healthz' });
      delta.healthStatus = 503;
      await loseRegistration(controlUrl(sb), 'delta', delta.url);
      await tableShowsBare(sb, 'delta');

      assert.equal((await get(sb.proxyPort!, '/delta/')).status, 503);
      assert.equal(delta.healthChecks, 1);
      assert.equal(delta.served, 0);
      // Recovered: once the remembered failure lapses, the next request probes, is served and heals.
      delta.healthStatus = 200;
      const ok = await waitFor('delta to be served', async () => {
        const r = await get(sb.proxyPort!, '/delta/x');
        return r.status === 200 ? r : null;
      });
      assert.equal(ok.text, 'delta /delta/x');
      assert.equal(delta.healthChecks, 2);
      await waitFor('the heal', async () => metricValue(await metrics(sb), 'switchboard_selfheal_total', { trigger: 'request' }) === 1);
    });

    it('probes nothing but the assignments of the tool asked for', async () => {
      await serve({ negativeCacheMs: 60_000 });
      const bystander = await tool('bystander');
      const port = await deadPort();
      await loseRegistration(controlUrl(sb), 'eps', `http://127.0.0.1:${port}`);
      await tableShowsBare(sb, 'eps');
      const registered = await tool('zeta');
      const put = await api(controlUrl(sb), 'PUT', '/v1/tools/zeta/backends/z1', { url: registered.url });
      assert.equal(put.status, 200);
      await waitFor('zeta routed', async () => (sb.feed?.current()?.lookup('zeta')?.backends.length ?? 0) === 1);

      const attempts = [
        await request(sb.proxyPort!, '/eps/'),
        await request(sb.proxyPort!, '/nosuchtool/'),
        await request(sb.proxyPort!, `/127.0.0.1:${bystander.port}/`),
        await request(sb.proxyPort!, '/', { headers: { host: `127.0.0.1:${bystander.port}` } }),
        await request(sb.proxyPort!, `http://127.0.0.1:${bystander.port}/eps/`),
        await request(sb.proxyPort!, `/eps/../${bystander.port}/`),
        await request(sb.proxyPort!, '/zeta/'),
      ];
      assert.deepEqual(
        attempts.map((r) => r.status),
        [503, 404, 404, 404, 404, 503, 200],
      );
      // The hook's own argument is not trusted either: a route the table does not hold is not probed.
      const forged = { tool: 'eps', backends: [], assignments: [{ tool: 'eps', host: '127.0.0.1', port: bystander.port, createdAt: 0 }] };
      assert.equal(await sb.discovery!.backendFor('eps', forged), null);
      assert.equal(await sb.discovery!.backendFor('ghost', { ...forged, tool: 'ghost' }), null);
      assert.equal(bystander.connections, 0);
      // One probe: eps's own dead assignment. zeta has a backend, so it was never probed.
      assert.equal(sb.discovery!.probes, 1);
      assert.equal(registered.silent, 0);
    });

    it('is off with discovery.enabled false: the tool answers 503 and nothing is probed', async () => {
      await serve({ enabled: false });
      const eta = await tool('eta');
      await loseRegistration(controlUrl(sb), 'eta', eta.url);
      await tableShowsBare(sb, 'eta');
      assert.equal((await get(sb.proxyPort!, '/eta/')).status, 503);
      assert.equal(sb.discovery, null);
      assert.equal(sb.reconciler, null);
      assert.equal(eta.connections, 0);
    });
  });
}
