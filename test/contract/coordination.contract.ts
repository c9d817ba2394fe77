import assert from 'node:assert/strict';
import { waitFor } from '../support/wait';
import type { StoreContext } from './store-context';

/**
 * Coordination between registry processes, and health (Store: acquireLock, releaseLock, swapCheckpoint,
 * ping, kind). The rules of the interface held here:
 * - a named lock is held by one owner for ttlMs: acquireLock answers whether `owner` holds it now (its owner
 *   takes it again and so renews the ttl; another owner only once the ttl lapsed or the owner released it);
 * - swapCheckpoint stores `now` under `name` and answers the previous value (null when none);
 * - ping answers true when the store answers.
 */
export function coordinationContract(ctx: StoreContext): void {
  describe('locks', () => {
    it('grants a free lock, renews it for its owner and refuses others', async () => {
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 5000), true);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 5000), true);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p2', 5000), false);
      // Another name is another lock.
      assert.equal(await ctx.store.acquireLock('other', 'p2', 5000), true);
    });

    it('lets another owner take a lock after its ttl lapsed', async () => {
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 100), true);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p2', 100), false);
      assert.equal(await waitFor('the ttl to lapse', () => ctx.store.acquireLock('sweeper', 'p2', 5000), 3000, 10), true);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 5000), false);
    });

    it('renewal extends the ttl', async () => {
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 300), true);
      // Taken after the first grant with the same ttl: once this one lapsed, so has the first grant.
      assert.equal(await ctx.store.acquireLock('yardstick', 'p1', 300), true);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 5000), true);
      await waitFor('the first grant to lapse', () => ctx.store.acquireLock('yardstick', 'p2', 5000), 3000, 10);
      assert.equal(await ctx.store.acquireLock('sweeper', 'p2', 5000), false);
    });

    it('releases only for the owner', async () => {
      assert.equal(await ctx.store.acquireLock('sweeper', 'p1', 5000), true);
      await ctx.store.releaseLock('sweeper', 'p2');
      assert.equal(await ctx.store.acquireLock('sweeper', 'p2', 5000), false);
      await ctx.store.releaseLock('sweeper', 'p1');
      assert.equal(await ctx.store.acquireLock('sweeper', 'p2', 5000), true);
      await ctx.store.releaseLock('never-held', 'p1');
    });
  });

  describe('checkpoints and health', () => {
    it('swaps a checkpoint and answers the previous value', async () => {
      assert.equal(await ctx.store.swapCheckpoint('sweep', ctx.T), null);
      assert.equal(await ctx.store.swapCheckpoint('sweep', ctx.T + 10), ctx.T);
      assert.equal(await ctx.store.swapCheckpoint('sweep', ctx.T + 20), ctx.T + 10);
      assert.equal(await ctx.store.swapCheckpoint('other', 5), null);
    });

    it('answers ping with true', async () => {
      assert.equal(await ctx.store.ping(), true);
    });

    it('names its kind', () => {
      assert.ok(ctx.store.kind === 'memory' || ctx.store.kind === 'redis');
    });
  });
}
