import assert from 'node:assert/strict';
import { HOST, HOST2, byHostPort, okResult, plain, type StoreContext } from './store-context';

/**
 * A host name stands for several addresses, and a connection to it may reach any of them: the registry
 * hands the store every address (upsertBackend and allocatePort `alsoHosts`), and the store treats them as
 * one claim. And a heartbeat may be held to ports its tool already holds (`assignedOnly`). The rules held:
 * - a heartbeat conflicts when another tool holds its port on any of the addresses, changing nothing;
 *   otherwise every free address is assigned to the tool in the heartbeat's one version and one event;
 * - `assignedOnly` refuses (`not_assigned`, nothing changed) unless the tool holds the port on every
 *   address, and never creates an assignment;
 * - allocatePort with `alsoHosts` answers a port that is free or the tool's own on every address, the
 *   existing one included, and assigns it on each.
 */
export function addressContract(ctx: StoreContext): void {
  describe('one claim on every address of a name (alsoHosts, assignedOnly)', () => {
    const range = { min: 7000, max: 7004 };
    const sorted = async () => plain((await ctx.store.listAssignments()).sort(byHostPort)).map((a) => `${a.tool}@${a.host}:${a.port}`);

    it('a heartbeat with alsoHosts assigns the port on every address, in one version and one event', async () => {
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, url: 'http://both.test:5001', alsoHosts: [HOST2] })));
      assert.equal(r.assignmentCreated, true);
      assert.deepEqual(await sorted(), [`alpha@${HOST}:5001`, `alpha@${HOST2}:5001`]);
      assert.equal(await ctx.versionNumber(), v + 1);
      const before = await ctx.eventsBeforeMarker(events);
      assert.equal(before.length, 1);
      assert.deepEqual(before[0].changes.map((c) => (c.kind === 'assignment.upsert' ? `${c.assignment.host}:${c.assignment.port}` : c.kind)), [`${HOST}:5001`, `${HOST2}:5001`, 'backend.upsert']);
      // The renewal finds both assignments its own: nothing new.
      const again = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, url: 'http://both.test:5001', alsoHosts: [HOST2], now: ctx.T + 1 })));
      assert.equal(again.assignmentCreated, false);
    });

    it('a heartbeat whose port another tool holds on one of the addresses is a port_conflict and changes nothing', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, host: HOST2 })));
      const v = await ctx.versionNumber();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5001, url: 'http://both.test:5001', alsoHosts: [HOST2] }));
      assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
      assert.equal(await ctx.versionNumber(), v);
      assert.deepEqual(await ctx.store.getBackends('beta'), []);
      assert.deepEqual(await sorted(), [`alpha@${HOST2}:5001`]);
    });

    it('assignedOnly refuses a port the tool does not hold on every address, and accepts one it holds', async () => {
      const v = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, assignedOnly: true })), { ok: false, reason: 'not_assigned' });
      assert.equal(await ctx.versionNumber(), v);
      assert.deepEqual(await sorted(), []);
      assert.deepEqual(await ctx.store.getBackends('alpha'), []);

      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      assert.ok(a.ok);
      const port = a.assignment.port;
      // Held on the first address only: the name's other address is still free, so still refused.
      assert.deepEqual(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port, alsoHosts: [HOST2], assignedOnly: true })), { ok: false, reason: 'not_assigned' });
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port, assignedOnly: true })));
      assert.equal(r.assignmentCreated, false);
      assert.equal(r.backend.url, `http://${HOST}:${port}`);
      // Another tool's port is a conflict first, as without assignedOnly.
      assert.deepEqual(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port, assignedOnly: true })), { ok: false, reason: 'port_conflict', holder: 'alpha' });
      assert.deepEqual(await sorted(), [`alpha@${HOST}:${port}`]);
    });

    it('allocatePort with alsoHosts skips ports another tool holds on an other address and assigns the port on each', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'squatter', id: 's', port: 7000, host: HOST2 })));
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T, { alsoHosts: [HOST2] });
      assert.ok(a.ok);
      assert.equal(a.created, true);
      assert.deepEqual(plain(a.assignment), { tool: 'alpha', host: HOST, port: 7001, createdAt: ctx.T });
      assert.deepEqual(await sorted(), [`alpha@${HOST}:7001`, `squatter@${HOST2}:7000`, `alpha@${HOST2}:7001`]);
      assert.equal(await ctx.versionNumber(), v + 1);
      const before = await ctx.eventsBeforeMarker(events);
      assert.equal(before.length, 1);
      assert.equal(before[0].changes.length, 2);
      // With exclusions too (the search that blocks ports), and a port of its own on the other address.
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b', port: 7002, host: HOST2 })));
      const b = await ctx.store.allocatePort('beta', HOST, range, ctx.T, { alsoHosts: [HOST2], exclude: [7000] });
      assert.ok(b.ok);
      assert.equal(b.assignment.port, 7002);
    });

    it("allocatePort with alsoHosts answers the tool's existing port and assigns it where it is free", async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      assert.ok(a.ok);
      const again = await ctx.store.allocatePort('alpha', HOST, range, ctx.T + 1, { alsoHosts: [HOST2] });
      assert.ok(again.ok);
      assert.equal(again.created, false);
      assert.equal(again.assignment.port, 7000);
      assert.deepEqual(await sorted(), [`alpha@${HOST}:7000`, `alpha@${HOST2}:7000`]);
      // Its port held by another tool on the other address: the tool gets a port usable on both instead.
      await ctx.store.releasePort(HOST2, 7000);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'squatter', id: 's', port: 7000, host: HOST2 })));
      const moved = await ctx.store.allocatePort('alpha', HOST, range, ctx.T + 2, { alsoHosts: [HOST2] });
      assert.ok(moved.ok);
      assert.equal(moved.assignment.port, 7001);
      assert.equal((await ctx.store.getAssignment(HOST2, 7001))?.tool, 'alpha');
    });
  });
}

