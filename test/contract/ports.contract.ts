import assert from 'node:assert/strict';
import { waitFor } from '../support/wait';
import { HOST, HOST2, byHostPort, okResult, plain, type StoreContext } from './store-context';

/**
 * The port registry (Store: allocatePort, getAssignment, listAssignments, releasePort, and the assignment a
 * heartbeat makes in upsertBackend). The rules of the interface held here:
 * - a heartbeat creates the assignment of its host:port when none holds it; when another tool holds it, the
 *   heartbeat changes nothing (no version) and answers `port_conflict`;
 * - allocatePort answers the tool's assignment on the host, or a new one: `opts.prefer` when it is free and
 *   within [min, max], else the lowest port of [min, max] neither assigned on that host nor in `opts.exclude`;
 *   `range_exhausted` changes nothing;
 * - one host:port is never handed to two tools, also under concurrent callers;
 * - releasePort answers the released assignment, or null when there was none.
 */
export function portContract(ctx: StoreContext): void {
  describe('heartbeats and the port registry', () => {
    it('creates the assignment for host:port on first heartbeat, once', async () => {
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      assert.equal(r.assignmentCreated, true);
      assert.deepEqual(plain(await ctx.store.getAssignment(HOST, 5001)), {
        tool: 'alpha',
        host: HOST,
        port: 5001,
        createdAt: ctx.T,
      });
      // A second instance of the same tool on the same host:port reuses the assignment.
      const r2 = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a2', port: 5001, now: ctx.T + 1 })));
      assert.equal(r2.created, true);
      assert.equal(r2.assignmentCreated, false);
      assert.equal((await ctx.store.getAssignment(HOST, 5001))?.createdAt, ctx.T);
      assert.equal((await ctx.store.listAssignments()).length, 1);
    });

    it('uses an assignment made by allocatePort for the same tool without creating another', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, { min: 6000, max: 6010 }, ctx.T);
      assert.ok(a.ok);
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: a.assignment.port })));
      assert.equal(r.assignmentCreated, false);
      assert.equal((await ctx.store.listAssignments()).length, 1);
    });

    it('answers port_conflict when another tool holds host:port and changes nothing', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      const before = await ctx.store.snapshot();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5001, now: ctx.T + 1000 }));
      assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
      assert.deepEqual(await ctx.store.getBackends('beta'), []);
      assert.equal(await ctx.store.backendCount(), 1);
      assert.equal((await ctx.store.getAssignment(HOST, 5001))?.tool, 'alpha');
      const after = await ctx.store.snapshot();
      assert.equal(after.version, before.version);
      assert.deepEqual(plain(after.backends), plain(before.backends));
      assert.deepEqual(plain(after.assignments), plain(before.assignments));
    });

    it('answers port_conflict against an assignment made by allocatePort', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, { min: 6000, max: 6000 }, ctx.T);
      assert.ok(a.ok);
      const v = await ctx.versionNumber();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 6000 }));
      assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
      assert.equal(await ctx.store.backendCount(), 0);
      assert.equal(await ctx.versionNumber(), v);
    });

    it('refuses a url change onto a port another tool holds, keeping the old lease untouched', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5002 })));
      const v = await ctx.versionNumber();
      const r = await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5001, now: ctx.T + 5000 }));
      assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
      const [b1] = await ctx.store.getBackends('beta');
      assert.equal(b1.url, `http://${HOST}:5002`);
      assert.equal(b1.lastHeartbeat, ctx.T);
      assert.equal(await ctx.versionNumber(), v);
    });

    it('lets only one of many concurrent tools claim one host:port', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => ctx.store.upsertBackend(ctx.input({ tool: `tool${i}`, id: 'x', port: 5500 }))),
      );
      const winners = results.filter((r) => r.ok);
      assert.equal(winners.length, 1);
      const holder = (await ctx.store.getAssignment(HOST, 5500))?.tool;
      assert.ok(holder);
      for (const r of results) {
        if (!r.ok) assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder });
      }
      assert.equal(await ctx.store.backendCount(), 1);
    });

    it('keeps the same port on different hosts independent', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, host: HOST })));
      const r = okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5001, host: HOST2 })));
      assert.equal(r.assignmentCreated, true);
      assert.equal((await ctx.store.getAssignment(HOST2, 5001))?.tool, 'beta');
    });
  });

  describe('port registry', () => {
    const range = { min: 7000, max: 7004 };

    it('allocates the lowest free port of the range', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'squatter', id: 's', port: 7000 })));
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      assert.deepEqual(plain(a), {
        ok: true,
        created: true,
        assignment: { tool: 'alpha', host: HOST, port: 7001, createdAt: ctx.T },
      });
      const b = await ctx.store.allocatePort('beta', HOST, range, ctx.T + 1);
      assert.ok(b.ok);
      assert.equal(b.assignment.port, 7002);
      assert.deepEqual(plain(await ctx.store.getAssignment(HOST, 7001)), {
        tool: 'alpha',
        host: HOST,
        port: 7001,
        createdAt: ctx.T,
      });
    });

    it('answers the same assignment to the same tool on the same host', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      const v = await ctx.versionNumber();
      const again = await ctx.store.allocatePort('alpha', HOST, range, ctx.T + 5000);
      assert.ok(a.ok && again.ok);
      assert.equal(again.created, false);
      assert.deepEqual(plain(again.assignment), plain(a.assignment));
      assert.equal(await ctx.versionNumber(), v);
      assert.equal((await ctx.store.listAssignments()).length, 1);
    });

    it("answers the tool's existing assignment on the host even outside the asked range", async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T + 1);
      assert.ok(a.ok);
      assert.equal(a.created, false);
      assert.equal(a.assignment.port, 5001);
    });

    it('allocates independently per host', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      const b = await ctx.store.allocatePort('beta', HOST2, range, ctx.T);
      const c = await ctx.store.allocatePort('alpha', HOST2, range, ctx.T);
      assert.ok(a.ok && b.ok && c.ok);
      assert.equal(a.assignment.port, 7000);
      assert.equal(b.assignment.port, 7000);
      assert.equal(b.assignment.host, HOST2);
      assert.equal(c.created, true);
      assert.equal(c.assignment.port, 7001);
      assert.equal(c.assignment.host, HOST2);
    });

    it('answers range_exhausted when every port is held, changing nothing', async () => {
      for (let i = 0; i < 5; i++) {
        const r = await ctx.store.allocatePort(`tool${i}`, HOST, range, ctx.T);
        assert.ok(r.ok);
        assert.equal(r.assignment.port, 7000 + i);
      }
      const v = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.allocatePort('late', HOST, range, ctx.T), { ok: false, reason: 'range_exhausted' });
      assert.equal(await ctx.versionNumber(), v);
      assert.equal((await ctx.store.listAssignments()).length, 5);
      // A single-port range works too.
      const one = await ctx.store.allocatePort('late', HOST2, { min: 7003, max: 7003 }, ctx.T);
      assert.ok(one.ok);
      assert.equal(one.assignment.port, 7003);
    });

    it('never hands out an excluded port, and exhausts the range when only excluded ones are left', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T, { exclude: [7000, 7002, 9999] });
      const b = await ctx.store.allocatePort('beta', HOST, range, ctx.T, { exclude: [7000, 7002] });
      assert.ok(a.ok && b.ok);
      assert.equal(a.assignment.port, 7001);
      assert.equal(b.assignment.port, 7003);
      // Exclusions bind only the call that gives them.
      const c = await ctx.store.allocatePort('gamma', HOST, range, ctx.T);
      assert.ok(c.ok);
      assert.equal(c.assignment.port, 7000);
      const v = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.allocatePort('late', HOST, range, ctx.T, { exclude: [7002, 7004] }), { ok: false, reason: 'range_exhausted' });
      assert.equal(await ctx.versionNumber(), v);
      // A tool's existing assignment is answered even when its port is excluded.
      const again = await ctx.store.allocatePort('alpha', HOST, range, ctx.T, { exclude: [7001] });
      assert.ok(again.ok);
      assert.equal(again.created, false);
      assert.equal(again.assignment.port, 7001);
    });

    it('answers the preferred port when it is free and in range, otherwise the lowest free one', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T, { prefer: 7003, exclude: [7000] });
      assert.ok(a.ok);
      assert.equal(a.assignment.port, 7003);
      assert.equal((await ctx.store.getAssignment(HOST, 7003))?.tool, 'alpha');
      const taken = await ctx.store.allocatePort('beta', HOST, range, ctx.T, { prefer: 7003, exclude: [7000] });
      assert.ok(taken.ok);
      assert.equal(taken.assignment.port, 7001);
      const outside = await ctx.store.allocatePort('gamma', HOST, range, ctx.T, { prefer: 7100 });
      assert.ok(outside.ok);
      assert.equal(outside.assignment.port, 7000);
    });

    it('gives 20 concurrent tools 20 distinct ports', async () => {
      const r20 = { min: 8000, max: 8019 };
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => ctx.store.allocatePort(`tool${i}`, HOST, r20, ctx.T)),
      );
      const ports = results.map((r) => {
        assert.ok(r.ok);
        assert.equal(r.created, true);
        return r.assignment.port;
      });
      assert.deepEqual(
        [...ports].sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => 8000 + i),
      );
      const listed = (await ctx.store.listAssignments()).sort(byHostPort);
      assert.equal(listed.length, 20);
      for (const r of results) {
        assert.ok(r.ok);
        assert.equal((await ctx.store.getAssignment(HOST, r.assignment.port))?.tool, r.assignment.tool);
      }
      assert.deepEqual(await ctx.store.allocatePort('tool20', HOST, r20, ctx.T), { ok: false, reason: 'range_exhausted' });
    });

    it('gives concurrent callers for one tool and host one assignment', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, () => ctx.store.allocatePort('alpha', HOST, range, ctx.T)),
      );
      const ports = new Set(results.map((r) => (r.ok ? r.assignment.port : -1)));
      assert.deepEqual([...ports], [7000]);
      assert.equal(results.filter((r) => r.ok && r.created).length, 1);
      assert.equal((await ctx.store.listAssignments()).length, 1);
    });

    it('releases a port: answers it once, then null, and the port is free again', async () => {
      const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
      assert.ok(a.ok);
      const { events } = await ctx.collect();
      const v = await ctx.versionNumber();
      assert.deepEqual(plain(await ctx.store.releasePort(HOST, 7000)), plain(a.assignment));
      assert.equal(await ctx.store.getAssignment(HOST, 7000), null);
      assert.equal(await ctx.versionNumber(), v + 1);
      await waitFor('the release event', () => events.length >= 1, 3000, 5);
      assert.deepEqual(events[0].changes, [{ kind: 'assignment.remove', host: HOST, port: 7000, tool: 'alpha' }]);
      assert.equal(events[0].version, v + 1);

      assert.equal(await ctx.store.releasePort(HOST, 7000), null);
      assert.equal(await ctx.store.releasePort(HOST, 7999), null);
      assert.equal(await ctx.versionNumber(), v + 1);
      const b = await ctx.store.allocatePort('beta', HOST, range, ctx.T);
      assert.ok(b.ok);
      assert.equal(b.assignment.port, 7000);
    });

    it('answers null for an unknown assignment and lists all assignments', async () => {
      assert.equal(await ctx.store.getAssignment(HOST, 1234), null);
      assert.deepEqual(await ctx.store.listAssignments(), []);
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001 })));
      await ctx.store.allocatePort('beta', HOST2, range, ctx.T + 1);
      assert.deepEqual(plain((await ctx.store.listAssignments()).sort(byHostPort)), [
        { tool: 'alpha', host: HOST, port: 5001, createdAt: ctx.T },
        { tool: 'beta', host: HOST2, port: 7000, createdAt: ctx.T + 1 },
      ]);
    });
  });
}
