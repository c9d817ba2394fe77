import assert from 'node:assert/strict';
import type { Change } from '../../src/registry/types';
import { waitFor } from '../support/wait';
import { HOST, byId, okResult, plain, type StoreContext } from './store-context';

/**
 * The table version and its change feed (Store: version, subscribe). The rules of the interface held here:
 * - a store keeps one epoch; each mutation that changes routing bumps the table version by exactly one and
 *   publishes one ChangeEvent stamped with that version and carrying its changes; a lease renewal that
 *   changes nothing a proxy routes on, a refusal and a no-op do neither;
 * - a subscriber gets the events in version order, every subscriber gets each of them, and an unsubscribed
 *   one gets no more.
 */
export function feedContract(ctx: StoreContext): void {
  describe('table version', () => {
    it('keeps one epoch across calls and reports the same version in snapshot and version()', async () => {
      const v0 = await ctx.store.version();
      assert.equal(typeof v0.epoch, 'string');
      assert.ok(v0.epoch.length > 0);
      assert.ok(Number.isInteger(v0.version) && v0.version >= 0);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      const v1 = await ctx.store.version();
      const snap = await ctx.store.snapshot();
      assert.equal(v1.epoch, v0.epoch);
      assert.equal(snap.epoch, v0.epoch);
      assert.equal(snap.version, v1.version);
    });

    it('steps the version by exactly one per routing mutation and not on pure renewals', async () => {
      const v0 = await ctx.versionNumber();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 }))); // backend + assignment
      assert.equal(await ctx.versionNumber(), v0 + 1);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, now: ctx.T + 1000, ttl: 99 })));
      assert.equal(await ctx.versionNumber(), v0 + 1, 'a renewal that keeps url and source');
      okResult(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, now: ctx.T + 2000, clientVersion: 'x' })),
      );
      assert.equal(await ctx.versionNumber(), v0 + 1, 'a renewal with a new clientVersion');
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5002, now: ctx.T + 3000 }))); // url change
      assert.equal(await ctx.versionNumber(), v0 + 2);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5003, source: 'discovered' })));
      assert.equal(await ctx.versionNumber(), v0 + 3);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5003, now: ctx.T + 1000, source: 'discovered' })));
      assert.equal(await ctx.versionNumber(), v0 + 3, 'a discovered renewal');
      // Source change of the same id: an update of that backend, not a supersede of itself.
      const promoted = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'd1', port: 5003, now: ctx.T + 2000 })));
      assert.equal(promoted.created, false);
      assert.equal(promoted.backend.source, 'registered');
      assert.equal(promoted.backend.registeredAt, ctx.T);
      assert.equal(await ctx.versionNumber(), v0 + 4);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`),
        ['a1:registered', 'd1:registered'],
      );
      const a = await ctx.store.allocatePort('beta', HOST, { min: 9000, max: 9001 }, ctx.T);
      assert.ok(a.ok);
      assert.equal(await ctx.versionNumber(), v0 + 5);
      await ctx.store.releasePort(HOST, 9000);
      assert.equal(await ctx.versionNumber(), v0 + 6);
      assert.equal(await ctx.store.removeBackend('alpha', 'a1'), true);
      assert.equal(await ctx.versionNumber(), v0 + 7);
    });
  });

  describe('change feed', () => {
    it('publishes one event per routing mutation, stamped with its version and carrying its changes', async () => {
      const { events } = await ctx.collect();
      const { epoch, version: v0 } = await ctx.store.version();

      const created = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      await waitFor('event 1', () => events.length >= 1, 3000, 5);
      assert.equal(events[0].epoch, epoch);
      assert.equal(events[0].version, v0 + 1);
      const kinds = events[0].changes.map((c) => c.kind).sort();
      assert.deepEqual(kinds, ['assignment.upsert', 'backend.upsert']);
      const bu = events[0].changes.find((c) => c.kind === 'backend.upsert') as Extract<
        Change,
        { kind: 'backend.upsert' }
      >;
      assert.deepEqual(plain(bu.backend), plain(created.backend));
      const au = events[0].changes.find((c) => c.kind === 'assignment.upsert') as Extract<
        Change,
        { kind: 'assignment.upsert' }
      >;
      assert.deepEqual(plain(au.assignment), { tool: 'alpha', host: HOST, port: 5001, createdAt: ctx.T });

      // Renewal: no event. A later mutation's event arriving first proves it.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, now: ctx.T + 1000 })));
      // Second instance, same assignment: only a backend.upsert.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5001 })));
      await waitFor('event 2', () => events.length >= 2, 3000, 5);
      assert.equal(events[1].version, v0 + 2);
      assert.equal(events[1].changes.length, 1);
      assert.equal(events[1].changes[0].kind, 'backend.upsert');
      assert.equal((events[1].changes[0] as Extract<Change, { kind: 'backend.upsert' }>).backend.id, 'a2');

      assert.equal(await ctx.store.removeBackend('alpha', 'a2'), true);
      await waitFor('event 3', () => events.length >= 3, 3000, 5);
      assert.equal(events[2].version, v0 + 3);
      assert.deepEqual(events[2].changes, [
        { kind: 'backend.remove', tool: 'alpha', id: 'a2', reason: 'deregistered' },
      ]);

      const a = await ctx.store.allocatePort('beta', HOST, { min: 9100, max: 9100 }, ctx.T);
      assert.ok(a.ok);
      await waitFor('event 4', () => events.length >= 4, 3000, 5);
      assert.equal(events[3].version, v0 + 4);
      assert.deepEqual(plain(events[3].changes), [
        { kind: 'assignment.upsert', assignment: { tool: 'beta', host: HOST, port: 9100, createdAt: ctx.T } },
      ]);

      // Refusals and no-ops publish nothing; the release afterwards is the next event.
      await ctx.store.upsertBackend(ctx.input({ tool: 'gamma', id: 'g', port: 9100 })); // port_conflict
      await ctx.store.allocatePort('beta', HOST, { min: 9100, max: 9100 }, ctx.T); // existing
      await ctx.store.allocatePort('late', HOST, { min: 9100, max: 9100 }, ctx.T); // exhausted
      await ctx.store.removeBackend('alpha', 'nope');
      await ctx.store.releasePort(HOST, 9100);
      await waitFor('event 5', () => events.length >= 5, 3000, 5);
      assert.equal(events[4].version, v0 + 5);
      assert.equal(events[4].changes[0].kind, 'assignment.remove');
      const five = await ctx.eventsBeforeMarker(events);
      assert.equal(five.length, 5);
      five.forEach((e) => assert.equal(e.epoch, epoch));
    });

    it('publishes a promotion from discovered to registered under one id as an upsert, not a removal', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'x1', port: 5001, source: 'discovered' })));
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'x1', port: 5001, now: ctx.T + 10 })));
      assert.equal(r.created, false);
      assert.equal(r.assignmentCreated, false);
      await waitFor('the promotion event', () => events.length >= 1, 3000, 5);
      assert.equal(events[0].version, v + 1);
      assert.equal(events[0].changes.length, 1);
      const change = events[0].changes[0] as Extract<Change, { kind: 'backend.upsert' }>;
      assert.equal(change.kind, 'backend.upsert');
      assert.equal(change.backend.id, 'x1');
      assert.equal(change.backend.source, 'registered');
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).map((b) => `${b.id}:${b.source}`),
        ['x1:registered'],
      );
    });

    it('delivers events in version order under a burst of mutations', async () => {
      const { events } = await ctx.collect();
      const v0 = await ctx.versionNumber();
      await Promise.all(
        Array.from({ length: 25 }, (_, i) => ctx.store.upsertBackend(ctx.input({ tool: `t${i}`, id: 'x', port: 5100 + i }))),
      );
      assert.equal(await ctx.versionNumber(), v0 + 25);
      await waitFor('25 events', () => events.length >= 25, 3000, 5);
      assert.deepEqual(
        events.map((e) => e.version),
        Array.from({ length: 25 }, (_, i) => v0 + 1 + i),
      );
    });

    it('stops delivery after unsubscribe', async () => {
      const first = await ctx.collect();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      await waitFor('first event', () => first.events.length >= 1, 3000, 5);
      await first.unsubscribe();

      const second = await ctx.collect();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a3', port: 5003 })));
      // The marker is written after a2 and a3 were published: by the time the second subscriber has it, an
      // event of theirs that still reached the first would have arrived too.
      assert.equal((await ctx.eventsBeforeMarker(second.events)).length, 2);
      assert.equal(first.events.length, 1);
    });

    it('fans out to several subscribers', async () => {
      const a = await ctx.collect();
      const b = await ctx.collect();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      await waitFor('both subscribers', () => a.events.length >= 1 && b.events.length >= 1, 3000, 5);
      assert.deepEqual(plain(a.events), plain(b.events));
    });
  });
}
