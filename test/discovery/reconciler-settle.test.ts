import assert from 'node:assert/strict';
import type { Switchboard } from '../../src/app';
import { MemoryStore } from '../../src/registry/memory-store';
import { api, controlUrl, loseRegistration, startInProcess, toolServer, type ToolServer } from './helpers';
import { waitFor, sleep } from '../support/wait';

// A launcher's child listens a moment before the launcher registers it. A reconcile probe in that moment
// must not count a heal (and fire the self-heal alert) for a tool whose registration is on its way.
describe('the reconciler waits discovery.settleMs before healing', function () {
  this.timeout(30_000);
  let sb: Switchboard;
  let base: string;
  const servers: ToolServer[] = [];
  afterEach(async () => {
    await sb?.stop();
    for (const s of servers.splice(0)) await s.close();
  });

  async function registry(settleMs: number) {
    sb = await startInProcess(new MemoryStore(), { roles: { proxy: false, registry: true }, discovery: { reconcileIntervalMs: 3_600_000, settleMs } });
    base = controlUrl(sb);
    await waitFor('leadership', async () => sb.leadership!.isLeader);
  }

  it('does not heal a tool whose registration arrives while it settles', async () => {
    await registry(1000);
    const t = await toolServer('gamma');
    servers.push(t);
    await loseRegistration(base, 'gamma', t.url);
    const round = sb.reconciler!.runOnce();
    await sleep(200); // probed, now settling
    const put = await api(base, 'PUT', '/v1/tools/gamma/backends/launcher-1', { url: t.url, ttl: 30 });
    assert.equal(put.status, 200);
    const out = await round;
    assert.equal(out.probed, 1);
    assert.equal(out.healed, 0);
    const backends = (await api(base, 'GET', '/v1/tools/gamma')).body.backends as Array<{ source: string }>;
    assert.deepEqual(backends.map((b) => b.source), ['registered']);
  });

  it('heals a tool still without a live backend after settling', async () => {
    await registry(300);
    const t = await toolServer('delta');
    servers.push(t);
    await loseRegistration(base, 'delta', t.url);
    const out = await sb.reconciler!.runOnce();
    assert.equal(out.healed, 1);
  });
});
