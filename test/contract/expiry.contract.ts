import assert from 'node:assert/strict';
import type { Change } from '../../src/registry/types';
import { waitFor } from '../support/wait';
import { HOST, byId, collectingSink, okResult, plain, type StoreContext } from './store-context';

/**
 * Lapsed leases (Store: expiredLeases, expireLeases, markHeld). The rules of the interface held here:
 * - expiredLeases lists leases whose expiresAt <= now, oldest first, at most `limit`, and removes nothing;
 * - expireLeases and markHeld compare on expiresAt, so a heartbeat that renewed a lease in the meantime
 *   wins; expiring removes leases, not the port the tool owns;
 * - markHeld marks in one routing mutation (one version, one event: a `backend.upsert` of each record with
 *   `held: true`) and never marks one already held; none marked: no version, no event;
 * - a renewal of a held backend clears the mark, and that is a routing change (one version, one event); a
 *   held backend is still a lapsed lease: expireLeases removes it, a discovered upsert replaces it.
 */
export function expiryContract(ctx: StoreContext): void {
  describe('lease expiry', () => {
    it('lists expired leases oldest first, up to the limit', async () => {
      // ttl 10, 5, 20, 1 from the same now: expiresAt order is a4, a2, a1, a3.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 5 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'a3', port: 5003, ttl: 20 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'a4', port: 5004, ttl: 1 })));

      assert.deepEqual(await ctx.store.expiredLeases(ctx.T, 10), []);
      assert.deepEqual(await ctx.store.expiredLeases(ctx.T + 999, 10), []);
      assert.deepEqual(plain(await ctx.store.expiredLeases(ctx.T + 10_000, 10)), [
        { tool: 'beta', id: 'a4', expiresAt: ctx.T + 1000, ttl: 1 },
        { tool: 'alpha', id: 'a2', expiresAt: ctx.T + 5000, ttl: 5 },
        { tool: 'alpha', id: 'a1', expiresAt: ctx.T + 10_000, ttl: 10 },
      ]);
      assert.deepEqual(plain(await ctx.store.expiredLeases(ctx.T + 60_000, 2)), [
        { tool: 'beta', id: 'a4', expiresAt: ctx.T + 1000, ttl: 1 },
        { tool: 'alpha', id: 'a2', expiresAt: ctx.T + 5000, ttl: 5 },
      ]);
      // Listing removes nothing.
      assert.equal(await ctx.store.backendCount(), 4);
    });

    it('moves a renewed lease out of the expired list', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, now: ctx.T + 5000 })));
      assert.deepEqual(await ctx.store.expiredLeases(ctx.T + 2000, 10), []);
      assert.deepEqual(plain(await ctx.store.expiredLeases(ctx.T + 6000, 10)), [
        { tool: 'alpha', id: 'a1', expiresAt: ctx.T + 6000, ttl: 1 },
      ]);
    });

    it('expires leases by compare-and-delete: a renewed lease survives', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a3', port: 5003, ttl: 60 })));
      const candidates = await ctx.store.expiredLeases(ctx.T + 2000, 10);
      assert.equal(candidates.length, 2);
      // a1 heartbeats between the sweep's read and its delete.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, now: ctx.T + 1500 })));

      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const removed = await ctx.store.expireLeases([
        ...candidates,
        { tool: 'alpha', id: 'ghost', expiresAt: ctx.T, ttl: 1 },
      ]);
      assert.deepEqual(plain(removed), [{ tool: 'alpha', id: 'a2', expiresAt: ctx.T + 1000, ttl: 1 }]);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => b.id),
        ['a1', 'a3'],
      );
      assert.equal(await ctx.store.backendCount(), 2);
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the expiry event', () => events.length >= 1, 3000, 5);
      assert.equal(events[0].version, v + 1);
      assert.deepEqual(events[0].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a2', reason: 'expired' }]);
      // Expiring removes leases, not the port the tool owns.
      assert.equal((await ctx.store.getAssignment(HOST, 5002))?.tool, 'alpha');
    });

    it('reports every removal of a batch expiry on the feed, version stepping once per event', async () => {
      for (let i = 0; i < 5; i++) {
        okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: `a${i}`, port: 5000 + i, ttl: 1 })));
      }
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const removed = await ctx.store.expireLeases(await ctx.store.expiredLeases(ctx.T + 1000, 100));
      assert.equal(removed.length, 5);
      assert.equal(await ctx.store.backendCount(), 0);
      const vAfter = await ctx.versionNumber();
      assert.ok(vAfter > v && vAfter <= v + 5, `version ${vAfter} after ${v}`);
      await waitFor('all expiry events', () => events.length >= vAfter - v, 3000, 5);
      const expiries = await ctx.eventsBeforeMarker(events);
      assert.equal(expiries.length, vAfter - v);
      expiries.forEach((e, i) => assert.equal(e.version, v + 1 + i));
      const ids = expiries
        .flatMap((e) => e.changes)
        .map((c) => {
          assert.equal(c.kind, 'backend.remove');
          const rem = c as Extract<Change, { kind: 'backend.remove' }>;
          assert.equal(rem.reason, 'expired');
          return rem.id;
        })
        .sort();
      assert.deepEqual(ids, ['a0', 'a1', 'a2', 'a3', 'a4']);
    });

    it('expires nothing and keeps the version when no candidate matches', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      const v = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.expireLeases([{ tool: 'alpha', id: 'a1', expiresAt: ctx.T + 999, ttl: 1 }]), []);
      assert.deepEqual(await ctx.store.expireLeases([]), []);
      assert.equal(await ctx.store.backendCount(), 1);
      assert.equal(await ctx.versionNumber(), v);
    });
  });

  describe('backends held by self-preservation (markHeld)', () => {
    /** The records routeSnapshot hands a proxy, by id: `id` or `id held`. */
    async function routed(): Promise<string[]> {
      const sink = collectingSink();
      await ctx.store.routeSnapshot(sink);
      return [...new Set(sink.backends.map((b) => (b.held ? `${b.id} held` : b.id)))].sort();
    }

    it('marks lapsed leases held in one routing mutation, seen by getBackends and routeSnapshot', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a3', port: 5003, ttl: 60 })));
      const candidates = await ctx.store.expiredLeases(ctx.T + 2000, 10);
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const marked = await ctx.store.markHeld([...candidates, { tool: 'alpha', id: 'ghost', expiresAt: ctx.T, ttl: 1 }]);
      assert.deepEqual(plain(marked).sort(byId), [
        { tool: 'alpha', id: 'a1', expiresAt: ctx.T + 1000, ttl: 1 },
        { tool: 'alpha', id: 'a2', expiresAt: ctx.T + 1000, ttl: 1 },
      ]);
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the held event', () => events.length >= 1, 3000, 5);
      assert.equal(events[0].version, v + 1);
      assert.deepEqual(
        events[0].changes.map((c) => (c.kind === 'backend.upsert' ? `upsert ${c.backend.id} held=${c.backend.held}` : c.kind)).sort(),
        ['upsert a1 held=true', 'upsert a2 held=true'],
      );
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.held ?? '-'}`),
        ['a1:true', 'a2:true', 'a3:-'],
      );
      assert.deepEqual(await routed(), ['a1 held', 'a2 held', 'a3']);
      // Held is not removed: the leases are still stored and still lapsed.
      assert.equal(await ctx.store.backendCount(), 3);
      assert.deepEqual((await ctx.store.expiredLeases(ctx.T + 2000, 10)).map((c) => c.id).sort(), ['a1', 'a2']);
      // Marking again changes nothing: no version, no event (a later mutation's event comes first).
      assert.deepEqual(await ctx.store.markHeld(candidates), []);
      assert.deepEqual(await ctx.store.markHeld([]), []);
      assert.equal(await ctx.versionNumber(), v + 1);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5009 })));
      await waitFor('the next event', () => events.length >= 2, 3000, 5);
      assert.equal(events[1].version, v + 2);
    });

    it('clears the mark on renewal with one event; the next renewal publishes nothing', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, instance: 'run-00001' })));
      assert.equal((await ctx.store.markHeld(await ctx.store.expiredLeases(ctx.T + 2000, 10))).length, 1);
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, instance: 'run-00001', now: ctx.T + 3000 })));
      assert.equal(r.created, false, 'a renewal, not a new registration');
      assert.equal(r.backend.held, undefined);
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the renewal event', () => events.length >= 1, 3000, 5);
      assert.equal(events[0].changes.length, 1);
      const ch = events[0].changes[0];
      assert.equal(ch.kind, 'backend.upsert');
      assert.equal((ch as Extract<Change, { kind: 'backend.upsert' }>).backend.held, undefined);
      assert.equal((await ctx.store.getBackends('alpha'))[0].held, undefined);
      assert.deepEqual(await routed(), ['a1']);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, instance: 'run-00001', now: ctx.T + 4000 })));
      assert.equal(await ctx.versionNumber(), v + 1, 'a plain renewal is no routing change');
      assert.deepEqual(await ctx.store.expiredLeases(ctx.T + 5000, 10), []);
    });

    it('marks by compare on expiresAt: a lease renewed after the sweep read it is not marked', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
      const candidates = await ctx.store.expiredLeases(ctx.T + 2000, 10);
      assert.equal(candidates.length, 2);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, now: ctx.T + 1500 })));
      const v = await ctx.versionNumber();
      assert.deepEqual((await ctx.store.markHeld(candidates)).map((c) => c.id), ['a2']);
      assert.equal(await ctx.versionNumber(), v + 1);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.held ?? '-'}`),
        ['a1:-', 'a2:true'],
      );
    });

    it('still expires a held backend by compare-and-delete', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
      const candidates = await ctx.store.expiredLeases(ctx.T + 2000, 10);
      await ctx.store.markHeld(candidates);
      const { events } = await ctx.collect();
      const removed = await ctx.store.expireLeases(await ctx.store.expiredLeases(ctx.T + 5000, 10));
      assert.deepEqual(plain(removed), [{ tool: 'alpha', id: 'a1', expiresAt: ctx.T + 1000, ttl: 1 }]);
      assert.equal(await ctx.store.backendCount(), 0);
      await waitFor('the expiry event', () => events.length >= 1, 3000, 5);
      assert.deepEqual(events[0].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a1', reason: 'expired' }]);
    });

    it('lets a discovered backend replace a held registration of the same url, and carries no mark over', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 1 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 1 })));
      await ctx.store.markHeld(await ctx.store.expiredLeases(ctx.T + 2000, 10));
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, ttl: 5, source: 'discovered', now: ctx.T + 2000 })));
      assert.equal(r.created, true);
      assert.equal(r.backend.held, undefined);
      // Same id: a discovery takes a held registration over as a new, live backend.
      const same = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 5, source: 'discovered', now: ctx.T + 2000 })));
      assert.equal(same.created, true);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}:${b.held ?? '-'}`),
        ['d1:discovered:-', 'r2:discovered:-'],
      );
      assert.deepEqual(await routed(), ['d1', 'r2']);
    });
  });
}
