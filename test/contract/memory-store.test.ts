import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/registry/memory-store';
import type { ChangeEvent } from '../../src/registry/types';
import { storeContract } from './store.contract';

const memoryStores = {
  async create() {
    return new MemoryStore();
  },
};
storeContract('memory', memoryStores);

describe('MemoryStore specifics', () => {
  it('starts a new epoch per instance', async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    assert.notEqual((await a.version()).epoch, (await b.version()).epoch);
    assert.equal(a.kind, 'memory');
  });

  it('delivers events after the mutation has returned, never inside it', async () => {
    const store = new MemoryStore();
    const seen: ChangeEvent[] = [];
    await store.subscribe((e) => seen.push(e), () => undefined);
    const pending = store.upsertBackend({
      tool: 'alpha', id: 'a1', url: 'http://127.0.0.1:5001', host: '127.0.0.1', port: 5001,
      ttl: 30, source: 'registered', now: 1,
    });
    assert.equal(seen.length, 0);
    await pending;
    await new Promise((r) => setImmediate(r));
    assert.equal(seen.length, 1);
  });

  it('keeps delivering to others when a subscriber throws', async () => {
    const store = new MemoryStore();
    const seen: number[] = [];
    await store.subscribe(() => { throw new Error('bad subscriber'); }, () => undefined);
    await store.subscribe((e) => seen.push(e.version), () => undefined);
    await store.allocatePort('alpha', '127.0.0.1', { min: 7000, max: 7000 }, 1);
    await store.allocatePort('beta', '127.0.0.1', { min: 7001, max: 7001 }, 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, [1, 2]);
  });

  it('drops events still queued for a subscriber that unsubscribed', async () => {
    const store = new MemoryStore();
    const seen: ChangeEvent[] = [];
    const unsubscribe = await store.subscribe((e) => seen.push(e), () => undefined);
    await store.allocatePort('alpha', '127.0.0.1', { min: 7000, max: 7000 }, 1);
    await unsubscribe();
    await new Promise((r) => setImmediate(r));
    assert.equal(seen.length, 0);
  });

  it('rejects calls after close', async () => {
    const store = new MemoryStore();
    await store.close();
    assert.equal(await store.ping(), false);
    await assert.rejects(store.getBackends('alpha'), { name: 'StoreUnavailableError' });
  });
});
