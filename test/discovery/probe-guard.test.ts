import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { probe } from '../../src/discovery/probe';
import { ConnectGuard } from '../../src/net/connect-guard';
import { sleep } from '../support/wait';

// A probe knocks only where the proxy itself would be allowed to connect.
describe('discovery probe and the connect-time address rule', () => {
  let server: net.Server;
  let port = 0;
  let connections = 0;
  before(async () => {
    server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('answers when the address is allowed', async () => {
    const r = await probe({ host: '127.0.0.1', port }, { budgetMs: 2000, healthPath: null, guard: new ConnectGuard(['127.0.0.0/8']) });
    assert.deepEqual(r, { ok: true });
  });

  it('refuses an address literal outside allowedNetworks without connecting', async () => {
    const before = connections;
    const r = await probe({ host: '127.0.0.1', port }, { budgetMs: 2000, healthPath: null, guard: new ConnectGuard(['10.0.0.0/8']) });
    assert.equal(r.ok, false);
    await sleep(100);
    assert.equal(connections, before);
  });

  it('refuses a name that now resolves outside allowedNetworks (rebinding) without connecting', async () => {
    const before = connections;
    const rebound: net.LookupFunction = (_host, _opts, cb) =>
      (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
    // The same name and resolver with the address allowed connects: the refusal below is the rule's.
    const allowed = await probe({ host: 'tool.internal.example', port }, { budgetMs: 2000, healthPath: null, guard: new ConnectGuard(['127.0.0.0/8'], rebound) });
    assert.deepEqual(allowed, { ok: true });
    await sleep(100);
    assert.ok(connections > before, 'the allowed probe did connect');
    const before2 = connections;
    const r = await probe({ host: 'tool.internal.example', port }, { budgetMs: 2000, healthPath: null, guard: new ConnectGuard(['10.0.0.0/8'], rebound) });
    assert.equal(r.ok, false);
    await sleep(100);
    assert.equal(connections, before2);
  });
});
