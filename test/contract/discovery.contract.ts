import assert from 'node:assert/strict';
import type { Change } from '../../src/registry/types';
import { waitFor } from '../support/wait';
import { HOST, byId, okResult, type StoreContext } from './store-context';

/**
 * Registered and discovered backends of one tool (Store.upsertBackend). The rules of the interface held here:
 * - a `registered` upsert removes `discovered` backends of the same tool with the same url (the registration
 *   supersedes the discovery), in the upsert's one version and event;
 * - a `discovered` upsert is refused (`registered_exists`) when a live registered backend of the tool has
 *   that url (or its id), and replaces (reason `replaced`) registered backends of that url (or id) whose
 *   lease has lapsed (`expiresAt <= now`, the expirer's own test), in one version and one event.
 */
export function discoveryContract(ctx: StoreContext): void {
  describe('registered and discovered backends', () => {
    it('lets a registered backend supersede discovered ones of the same tool and url', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd2', port: 5002, source: 'discovered' })));
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001, now: ctx.T + 100 })));
      assert.equal(r.created, true);
      assert.equal(r.backend.source, 'registered');
      const ids = (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`);
      assert.deepEqual(ids, ['d2:discovered', 'r1:registered']);
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the supersede event', () => events.length >= 1, 3000, 5);
      assert.equal((await ctx.eventsBeforeMarker(events)).length, 1);
      const removals = events[0].changes.filter((c) => c.kind === 'backend.remove');
      assert.deepEqual(removals, [{ kind: 'backend.remove', tool: 'alpha', id: 'd1', reason: 'replaced' }]);
      const upserts = events[0].changes.filter((c) => c.kind === 'backend.upsert');
      assert.equal(upserts.length, 1);
      assert.equal((upserts[0] as Extract<Change, { kind: 'backend.upsert' }>).backend.id, 'r1');
      assert.equal(events[0].version, v + 1);
    });

    it('does not let a registered backend of one tool remove a discovered one of another tool', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' })));
      // The url is the same but the port belongs to alpha, so beta conflicts and nothing is removed.
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'r1', port: 5001 }));
      assert.equal(r.ok, false);
      assert.equal((await ctx.store.getBackends('alpha')).length, 1);
    });

    it('refuses a discovered backend when a registered one of the tool has that url', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001 })));
      const v = await ctx.versionNumber();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' }));
      assert.deepEqual(r, { ok: false, reason: 'registered_exists' });
      const ids = (await ctx.store.getBackends('alpha')).map((b) => b.id);
      assert.deepEqual(ids, ['r1']);
      assert.equal(await ctx.versionNumber(), v);
    });

    it('refuses a discovered upsert that would overwrite a registered backend of the same id', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      const v = await ctx.versionNumber();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5002, source: 'discovered' }));
      assert.deepEqual(r, { ok: false, reason: 'registered_exists' });
      const [a1] = await ctx.store.getBackends('alpha');
      assert.equal(a1.source, 'registered');
      assert.equal(a1.url, `http://${HOST}:5001`);
      assert.equal(await ctx.store.getAssignment(HOST, 5002), null);
      assert.equal(await ctx.versionNumber(), v);
    });

    it('lets a discovered backend replace a registered one of the same url whose lease lapsed, in one event', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 30 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 30 })));
      // One millisecond before the lease lapses the registration still stands.
      assert.deepEqual(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered', now: ctx.T + 29_999 })),
        { ok: false, reason: 'registered_exists' },
      );
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const r = okResult(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5001, ttl: 5, source: 'discovered', now: ctx.T + 30_000 })),
      );
      assert.equal(r.created, true);
      assert.equal(r.assignmentCreated, false);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`),
        ['d1:discovered', 'r2:registered'],
      );
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the replace event', () => events.length >= 1, 3000, 5);
      assert.equal((await ctx.eventsBeforeMarker(events)).length, 1);
      assert.deepEqual(
        events[0].changes.map((c) => (c.kind === 'backend.upsert' ? `upsert ${c.backend.id}` : c.kind === 'backend.remove' ? `remove ${c.id} ${c.reason}` : c.kind)).sort(),
        ['remove r1 replaced', 'upsert d1'],
      );
      // The replaced lease is gone from the expiry index too: the sweep finds only the other lapsed one,
      // and compare-and-delete of a stale candidate for it removes nothing.
      assert.deepEqual(
        (await ctx.store.expiredLeases(ctx.T + 30_000, 10)).map((c) => c.id),
        ['r2'],
      );
      assert.deepEqual(await ctx.store.expireLeases([{ tool: 'alpha', id: 'r1', expiresAt: ctx.T + 30_000, ttl: 30 }]), []);
      // The discovered backend holds a fresh lease of its own.
      const [d1] = (await ctx.store.getBackends('alpha')).filter((b) => b.id === 'd1');
      assert.equal(d1.expiresAt, ctx.T + 35_000);
    });

    it('lets a discovered upsert take over a lapsed registered backend of the same id as a new backend', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
      const r = okResult(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, source: 'discovered', now: ctx.T + 10_000 })),
      );
      assert.equal(r.created, true);
      assert.equal(r.backend.source, 'discovered');
      assert.equal(r.backend.registeredAt, ctx.T + 10_000);
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('never lets a discovered backend replace a lapsed registration of another url, or a live one', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 5 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 60 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd3', port: 5003, source: 'discovered', now: ctx.T + 10_000 })));
      assert.deepEqual(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd2', port: 5002, source: 'discovered', now: ctx.T + 10_000 })),
        { ok: false, reason: 'registered_exists' },
      );
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => b.id),
        ['d3', 'r1', 'r2'],
      );
    });

    it('accepts a discovered backend whose url no registered backend has', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'r1', port: 5001 })));
      const r = okResult(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5002, source: 'discovered' })),
      );
      assert.equal(r.created, true);
      assert.equal(r.backend.source, 'discovered');
      assert.equal(await ctx.store.backendCount(), 2);
    });
  });
}
