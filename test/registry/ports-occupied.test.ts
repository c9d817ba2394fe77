import assert from 'node:assert/strict';
import net from 'node:net';
import { OCCUPIED_PORT_ATTEMPTS } from '../../src/registry/registry';
import { startApi, storeKinds, type Api } from './harness';
import { capturingLogger, CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';

// "A port is never handed out while something listens on it": after Redis restarted empty, the lowest
// free port of the store was one a running tool still listened on.

/** Real listeners on `n` consecutive loopback ports, from a base where all of them were free. */
async function listenRange(n: number): Promise<{ base: number; servers: net.Server[] }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 40_000 + Math.floor(Math.random() * 10_000);
    const servers: net.Server[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const srv = net.createServer((s) => s.destroy());
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(base + i, '127.0.0.1', () => resolve());
        });
        servers.push(srv);
      }
      return { base, servers };
    } catch {
      await closeAll(servers);
    }
  }
  throw new Error(`no ${n} consecutive free loopback ports found`);
}

async function closeAll(servers: net.Server[]): Promise<void> {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}

/** Whether a port can be bound right now (nothing listens on it). */
async function free(port: number): Promise<boolean> {
  const srv = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => srv.close(() => resolve()));
  return ok;
}

for (const kind of storeKinds()) {
  describe(`POST /v1/ports skips ports something listens on (${kind.name} store)`, function () {
    this.timeout(20_000);
    let api: Api;
    let logs: CapturedLogs;
    let servers: net.Server[] = [];

    before(() => kind.before());
    after(() => kind.after());
    afterEach(async () => {
      await api?.close();
      await api?.store.close();
      await closeAll(servers);
      servers = [];
    });

    async function start(min: number, max: number) {
      const captured = capturingLogger();
      logs = captured;
      api = await startApi({ store: await kind.create(), logger: captured.logger, overrides: { ports: { min, max } } });
    }

    it('with a listener on the lowest port of the range answers the next one, counts it, and keeps no assignment on it', async () => {
      const l = await listenRange(1);
      servers = l.servers;
      assert.ok(await free(l.base + 1), 'the next port is free (the test needs it)');
      await start(l.base, l.base + 5);
      const r = await api.call('POST', '/v1/ports', { json: { tool: 'wiki-bot', host: '127.0.0.1' } });
      assert.equal(r.status, 200, r.text);
      const text = await api.metrics.registry.metrics();
      console.log(`      ${kind.name}: listener on ${l.base}, answered ${r.body.port}, switchboard_ports_occupied_total ${metricValue(text, 'switchboard_ports_occupied_total')}`);
      assert.equal(r.body.port, l.base + 1);
      assert.equal(metricValue(text, 'switchboard_ports_occupied_total'), 1);
      const ports = await api.call('GET', '/v1/ports');
      assert.deepEqual(
        (ports.body.assignments as Array<{ tool: string; port: number }>).map((a) => `${a.tool}:${a.port}`),
        [`wiki-bot:${l.base + 1}`],
        'no assignment left on the occupied port',
      );
      const logged = logs.events('port.occupied');
      assert.deepEqual(logged.map((x) => [x.host, x.port]), [['127.0.0.1', l.base]]);
    });

    it('answers a tool its existing assignment as before, even while the tool listens on it', async () => {
      const l = await listenRange(1);
      servers = l.servers;
      await start(l.base, l.base);
      // The listener closes, the tool gets the port and starts listening there itself.
      await closeAll(servers);
      const first = await api.call('POST', '/v1/ports', { json: { tool: 'wiki-bot', host: '127.0.0.1' } });
      assert.equal(first.status, 200, first.text);
      servers = [];
      const own = net.createServer((s) => s.destroy());
      await new Promise<void>((resolve) => own.listen(first.body.port as number, '127.0.0.1', () => resolve()));
      servers.push(own);
      const again = await api.call('POST', '/v1/ports', { json: { tool: 'wiki-bot', host: '127.0.0.1' } });
      assert.equal(again.status, 200);
      assert.equal(again.body.port, first.body.port);
      assert.equal(metricValue(await api.metrics.registry.metrics(), 'switchboard_ports_occupied_total'), 0);
    });

    it(`gives up after ${OCCUPIED_PORT_ATTEMPTS} occupied ports with a 503 naming them, and after the range with its own 503`, async () => {
      const l = await listenRange(OCCUPIED_PORT_ATTEMPTS);
      servers = l.servers;
      await start(l.base, l.base + OCCUPIED_PORT_ATTEMPTS + 5);
      const r = await api.call('POST', '/v1/ports', { json: { tool: 'wiki-bot', host: '127.0.0.1' } });
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, 'ports_occupied');
      assert.match(r.body.error.message, new RegExp(`\\b${l.base}, ${l.base + 1}\\b`));
      assert.equal((await api.call('GET', '/v1/ports')).body.assignments.length, 0, 'no assignment left behind');
      await api.close();
      await api.store.close();

      await start(l.base, l.base + 1);
      const small = await api.call('POST', '/v1/ports', { json: { tool: 'wiki-bot', host: '127.0.0.1' } });
      assert.equal(small.status, 503);
      assert.equal(small.body.error.code, 'port_range_exhausted');
      assert.match(small.body.error.message, new RegExp(`something listens on it \\(${l.base}, ${l.base + 1}\\)`));
    });
  });
}
