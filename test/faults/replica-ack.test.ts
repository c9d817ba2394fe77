import assert from 'node:assert/strict';
import { RedisStore } from '../../src/registry/redis-store';
import { NotReplicatedError } from '../../src/registry/store';
import { command } from '../support/redis-command';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** A Redis without replicas: every WAIT for one runs into its timeout. */
describe('RedisStore with waitReplicas on a Redis that has no replica', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: RedisStore;

  before(async () => {
    redis = await new RedisServer().start();
    store = await RedisStore.connect({ url: redis.url, keyPrefix: 'ack:', commandTimeoutMs: 1000, waitReplicas: 1, waitTimeoutMs: 200 });
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  const upsert = (i: number) =>
    store.upsertBackend({ tool: `t${i}`, id: 'a', url: `http://127.0.0.1:${20000 + i}`, host: '127.0.0.1', port: 20000 + i, ttl: 30, source: 'registered', now: Date.now() });

  async function waitCalls(): Promise<number> {
    const stats = String(await command(redis.port, ['INFO', 'commandstats']));
    return Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }

  it('fails the write with NotReplicatedError, and the write stays applied', async () => {
    await assert.rejects(upsert(0), (err: Error) => err instanceof NotReplicatedError && /0 of 1 replicas/.test(err.message));
    assert.equal((await store.getBackends('t0')).length, 1);
    await assert.rejects(store.allocatePort('p0', '127.0.0.1', { min: 21000, max: 21010 }, Date.now()), NotReplicatedError);
    assert.equal((await store.listAssignments()).some((a) => a.tool === 'p0'), true);
  });

  it('writes answered together share one WAIT (group commit) instead of queueing one timeout each', async () => {
    const before = await waitCalls();
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => upsert(100 + i)));
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof NotReplicatedError), 'each one was refused as not replicated, none timed out');
    const used = (await waitCalls()) - before;
    assert.ok(used <= 5, `50 writes used ${used} WAITs`);
  });

  it('reads and lease work stay on the command connection, unhindered by a blocked WAIT', async () => {
    let settled = false;
    const pending = upsert(200).catch((err: unknown) => err).finally(() => (settled = true));
    // Once the WAIT is blocking its connection (for 200 ms), reads and locks must not queue behind it.
    await waitFor('the WAIT to block its connection', async () => /^blocked_clients:[1-9]/m.test(String(await command(redis.port, ['INFO', 'clients']))), 1000, 5);
    assert.equal((await store.getBackends('t0')).length, 1);
    assert.equal(await store.acquireLock('l', 'me', 1000), true);
    assert.equal(settled, false, 'answered while the WAIT was still blocking');
    assert.ok((await pending) instanceof NotReplicatedError);
  });
});
