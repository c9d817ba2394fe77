import assert from 'node:assert/strict';
import { collectingSink, okResult, plain, type StoreContext } from './store-context';

/**
 * A backend's sub-route prefix (UpsertBackendInput.prefix, Backend.prefix). The rules held here:
 * - it is stored with the backend and handed to a route snapshot (proxies route on it);
 * - a heartbeat that changes it (sets, changes or drops it) is a routing change: one `backend.upsert`;
 * - a renewal that keeps it is no routing change.
 */
export function prefixContract(ctx: StoreContext): void {
  describe('sub-route prefix', () => {
    it('stores the prefix and hands it to a route snapshot', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'api', port: 5001, prefix: '/api' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'root', port: 5002 })));
      const [stored] = (await ctx.store.getBackends('alpha')).filter((b) => b.id === 'api');
      assert.equal(stored.prefix, '/api');
      const sink = collectingSink();
      await ctx.store.routeSnapshot(sink);
      assert.deepEqual(plain(sink.backends.map((b) => [b.id, b.prefix ?? null]).sort()), [['api', '/api'], ['root', null]]);
    });

    it('publishes a change of prefix as a routing change, and not a renewal that keeps it', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'api', port: 5001, prefix: '/api' })));
      const sub = await ctx.collect();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'api', port: 5001, prefix: '/api' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'api', port: 5001, prefix: '/v2' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'api', port: 5001 })));
      const events = await ctx.eventsBeforeMarker(sub.events);
      const prefixes = events.flatMap((e) => e.changes).map((c) => (c.kind === 'backend.upsert' ? (c.backend.prefix ?? null) : c.kind));
      assert.deepEqual(prefixes, ['/v2', null]);
    });
  });
}
