import assert from 'node:assert/strict';
import type { Backend } from '../../src/registry/types';
import { waitFor } from '../support/wait';
import { HOST, byId, okResult, plain, type StoreContext } from './store-context';

/**
 * Backends and their leases (Store: upsertBackend, removeBackend, removeOwnedBackend, getBackends,
 * backendCount). The rules of the interface held here:
 * - a heartbeat creates or renews a backend's lease (idempotent); `registeredAt` is kept across renewals,
 *   `expiresAt = now + ttl*1000`;
 * - the stored `instance` is always the one of the newest heartbeat: an upsert whose instance differs from
 *   the stored one (either side may be absent) takes the lease over, answering `created` with a new
 *   `registeredAt`;
 * - a heartbeat that changes nothing a proxy routes on (a new restarts count, a takeover by another
 *   instance) bumps no version;
 * - removeBackend answers false when there was no such backend;
 * - removeOwnedBackend is a compare-and-delete on the instance: a backend held by another instance, or by
 *   none, is left unchanged (`instance_mismatch`, no version bump, no event); `absent` when there is none.
 */
export function leaseContract(ctx: StoreContext): void {
  describe('backends and leases', () => {
    it('creates a backend on first heartbeat with the lease fields set', async () => {
      const r = okResult(
        await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 15, clientVersion: '1.2.3' })),
      );
      assert.equal(r.created, true);
      assert.equal(r.assignmentCreated, true);
      const expected: Backend = {
        tool: 'alpha',
        id: 'a1',
        url: `http://${HOST}:5001`,
        source: 'registered',
        registeredAt: ctx.T,
        lastHeartbeat: ctx.T,
        expiresAt: ctx.T + 15_000,
        ttl: 15,
        clientVersion: '1.2.3',
      };
      assert.deepEqual(plain(r.backend), expected);
      assert.deepEqual(plain(await ctx.store.getBackends('alpha')), [expected]);
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('renews an existing lease: keeps registeredAt, moves lastHeartbeat and expiresAt', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
      const r = okResult(
        await ctx.store.upsertBackend(
          ctx.input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 20, now: ctx.T + 4000, clientVersion: '2.0.0' }),
        ),
      );
      assert.equal(r.created, false);
      assert.equal(r.assignmentCreated, false);
      assert.equal(r.backend.registeredAt, ctx.T);
      assert.equal(r.backend.lastHeartbeat, ctx.T + 4000);
      assert.equal(r.backend.expiresAt, ctx.T + 4000 + 20_000);
      assert.equal(r.backend.ttl, 20);
      assert.equal(r.backend.clientVersion, '2.0.0');
      const [stored] = await ctx.store.getBackends('alpha');
      assert.deepEqual(plain(stored), plain(r.backend));
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('removes a backend once: true then false', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002 })));
      assert.equal(await ctx.store.removeBackend('alpha', 'a1'), true);
      assert.deepEqual(
        (await ctx.store.getBackends('alpha')).map((b) => b.id),
        ['a2'],
      );
      assert.equal(await ctx.store.backendCount(), 1);
      const v = await ctx.versionNumber();
      assert.equal(await ctx.store.removeBackend('alpha', 'a1'), false);
      assert.equal(await ctx.store.removeBackend('nobody', 'a2'), false);
      assert.equal(await ctx.versionNumber(), v);
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('stores the instance of the newest heartbeat: another instance (or none) takes the lease over as a new registration', async () => {
      const first = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
      assert.equal(first.created, true);
      assert.equal(first.backend.instance, 'run-aaaa1');
      const v = await ctx.versionNumber();
      const renewed = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', now: ctx.T + 1000 })));
      assert.equal(renewed.created, false, 'same instance: a renewal');
      assert.equal(renewed.backend.registeredAt, ctx.T);
      const taken = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-bbbb2', now: ctx.T + 2000 })));
      assert.equal(taken.created, true, 'another instance: a new registration');
      assert.equal(taken.backend.registeredAt, ctx.T + 2000);
      assert.equal(taken.backend.instance, 'run-bbbb2');
      assert.equal((await ctx.store.getBackends('alpha'))[0].instance, 'run-bbbb2');
      const anonymous = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, now: ctx.T + 3000 })));
      assert.equal(anonymous.created, true, 'a heartbeat without an instance owns it too');
      assert.equal(plain(await ctx.store.getBackends('alpha'))[0].instance, undefined);
      assert.equal(await ctx.versionNumber(), v, 'a takeover keeps url and source: nothing a proxy routes on changed');
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('stores the restarts count of the newest heartbeat, beside clientVersion, without a version bump; a heartbeat without one clears it', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
      const v = await ctx.versionNumber();
      const three = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', restarts: 3, now: ctx.T + 1000 })));
      assert.equal(three.backend.restarts, 3);
      assert.equal(three.created, false, 'a restart keeps the lease: a renewal');
      const both = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', restarts: 4, clientVersion: '1.2.3', now: ctx.T + 2000 })));
      assert.equal(both.backend.restarts, 4);
      assert.equal(both.backend.clientVersion, '1.2.3');
      const [stored] = plain(await ctx.store.getBackends('alpha'));
      assert.equal(stored.restarts, 4);
      assert.equal(stored.clientVersion, '1.2.3');
      assert.equal((await ctx.store.snapshot()).backends[0].restarts, 4);
      assert.equal(await ctx.versionNumber(), v, 'a count tells a proxy nothing to route on');
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', now: ctx.T + 3000 })));
      assert.equal(plain(await ctx.store.getBackends('alpha'))[0].restarts, undefined);
    });

    it('removes a backend for its owner instance only (compare-and-delete); a mismatch changes nothing and publishes nothing', async () => {
      const { events } = await ctx.collect();
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5002 })));
      await waitFor('the two upserts', () => events.length >= 2, 3000, 5);
      const v = await ctx.versionNumber();
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'instance_mismatch');
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'a2', 'run-aaaa1'), 'instance_mismatch', 'a backend held by no instance');
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'nope', 'run-aaaa1'), 'absent');
      assert.equal(await ctx.store.removeOwnedBackend('nobody', 'a1', 'run-aaaa1'), 'absent');
      assert.equal(await ctx.versionNumber(), v);
      assert.deepEqual((await ctx.store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.instance ?? '-'}`), ['a1:run-aaaa1', 'a2:-']);

      // Taken over by another run: the first run's removal no longer matches, the new owner's does.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-bbbb2', now: ctx.T + 1000 })));
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'a1', 'run-aaaa1'), 'instance_mismatch');
      assert.equal((await ctx.store.getBackends('alpha')).find((b) => b.id === 'a1')?.instance, 'run-bbbb2');
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'removed');
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the removal event', () => events.length >= 3, 3000, 5);
      assert.deepEqual(events[2].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a1', reason: 'deregistered' }]);
      assert.equal(events[2].version, v + 1, 'the refused removals published nothing before it');
      assert.equal(await ctx.store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'absent');
      // Without an instance, removal does not ask who registered (admin tooling, older clients).
      assert.equal(await ctx.store.removeBackend('alpha', 'a2'), true);
      assert.equal(await ctx.store.backendCount(), 0);
    });

    it("never loses a takeover to the previous owner's concurrent removal", async () => {
      for (let round = 0; round < 20; round++) {
        const id = `r${round}`;
        okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id, port: 5001, instance: 'run-old00' })));
        const [removal, takeover] = await Promise.all([
          ctx.store.removeOwnedBackend('alpha', id, 'run-old00'),
          ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id, port: 5001, instance: 'run-new00', now: ctx.T + 1000 })),
        ]);
        okResult(takeover);
        assert.ok(removal === 'removed' || removal === 'instance_mismatch', removal);
        // Whichever ran first, the new owner's backend is what is left.
        const left = (await ctx.store.getBackends('alpha')).filter((b) => b.id === id);
        assert.deepEqual(left.map((b) => b.instance), ['run-new00'], `round ${round}: removal ${removal}`);
      }
    });

    it('answers no backends for an unknown tool', async () => {
      assert.deepEqual(await ctx.store.getBackends('nobody'), []);
      assert.equal(await ctx.store.backendCount(), 0);
    });
  });
}
