import assert from 'node:assert/strict';
import type { Assignment, Change, ChangeEvent, Revocation, TokenRecord } from '../../src/registry/types';
import { waitFor } from '../support/wait';
import { HOST, HOST2, byHostPort, byId, plain, type StoreContext } from './store-context';

/**
 * The store's part in writing back a registry's durable copy after the store lost its state
 * (src/registry/restorer.ts; Store: restoreAssignments, restoreCredentials). The rules of the interface
 * held here:
 * - restoreAssignments creates each assignment only when its host:port is free, so whatever was written
 *   since the loss wins, and answers the created ones; they are one routing mutation (one version, one
 *   event), or one per batch when the store splits a long list;
 * - restoreCredentials adds a token record only when its id is neither stored nor revoked, and revocations
 *   as putRevocation does.
 */
export function restoreContract(ctx: StoreContext): void {
  describe('durable copy write-back', () => {
    function upserted(e: ChangeEvent): Assignment[] {
      return e.changes
        .filter((c): c is Extract<Change, { kind: 'assignment.upsert' }> => c.kind === 'assignment.upsert')
        .map((c) => c.assignment);
    }

    const lost = (tool: string, host: string, port: number, createdAt: number): Assignment => ({ tool, host, port, createdAt });

    describe('restoreAssignments', () => {
      it('creates only free host:ports, keeping their createdAt, and answers the created ones', async () => {
        // Written since the loss: alpha took 7000 again itself, beta's heartbeat took 7001.
        const alpha = await ctx.store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, ctx.T + 50);
        assert.ok(alpha.ok);
        assert.equal((await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'x', port: 7001 }))).ok, true);

        const created = await ctx.store.restoreAssignments([
          lost('alpha', HOST, 7000, ctx.T - 1000),
          lost('gamma', HOST, 7001, ctx.T - 900),
          lost('gamma', HOST, 7002, ctx.T - 800),
          lost('delta', HOST2, 7000, ctx.T - 700),
        ]);
        assert.deepEqual(plain(created.sort(byHostPort)), [
          lost('gamma', HOST, 7002, ctx.T - 800),
          lost('delta', HOST2, 7000, ctx.T - 700),
        ]);
        assert.deepEqual(plain((await ctx.store.listAssignments()).sort(byHostPort)), [
          lost('alpha', HOST, 7000, ctx.T + 50),
          lost('beta', HOST, 7001, ctx.T),
          lost('gamma', HOST, 7002, ctx.T - 800),
          lost('delta', HOST2, 7000, ctx.T - 700),
        ]);
      });

      it('is one routing mutation: one version and one event with every created assignment; none when nothing is created', async () => {
        await ctx.store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, ctx.T);
        const { events } = await ctx.collect();
        const v = await ctx.versionNumber();
        const copy = [lost('alpha', HOST, 7000, ctx.T - 5), lost('beta', HOST, 7001, ctx.T - 4), lost('gamma', HOST, 7002, ctx.T - 3), lost('delta', HOST2, 7001, ctx.T - 2)];

        const created = await ctx.store.restoreAssignments(copy);
        assert.equal(created.length, 3);
        assert.equal(await ctx.versionNumber(), v + 1);
        await waitFor('the restore event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].version, v + 1);
        assert.deepEqual(plain(upserted(events[0]).sort(byHostPort)), plain(created.sort(byHostPort)));
        assert.equal(events[0].changes.length, 3);

        // Everything is held now: the same copy again creates nothing and publishes nothing.
        assert.deepEqual(await ctx.store.restoreAssignments(copy), []);
        assert.deepEqual(await ctx.store.restoreAssignments([]), []);
        assert.equal(await ctx.versionNumber(), v + 1);
        assert.ok(await ctx.store.releasePort(HOST2, 7001));
        assert.equal((await ctx.eventsBeforeMarker(events)).length, 2);
        assert.equal(events[1].version, v + 2);
        assert.equal(events[1].changes[0].kind, 'assignment.remove');
      });

      it("keeps the tool-on-host index: allocatePort answers the tool's restored assignment, and other tools cannot take it", async () => {
        const range = { min: 7000, max: 7009 };
        await ctx.store.restoreAssignments([lost('alpha', HOST, 7003, ctx.T - 10), lost('beta', HOST, 7005, ctx.T - 10), lost('beta', HOST2, 7001, ctx.T - 10)]);
        const a = await ctx.store.allocatePort('alpha', HOST, range, ctx.T);
        assert.deepEqual(plain(a), { ok: true, created: false, assignment: lost('alpha', HOST, 7003, ctx.T - 10) });
        const b = await ctx.store.allocatePort('beta', HOST2, range, ctx.T);
        assert.deepEqual(plain(b), { ok: true, created: false, assignment: lost('beta', HOST2, 7001, ctx.T - 10) });

        // New tools get the lowest port no restored assignment holds.
        const c = await ctx.store.allocatePort('gamma', HOST, range, ctx.T);
        assert.ok(c.ok && c.created && c.assignment.port === 7000);
        // A restored port lower than the tool's live one becomes the one answered.
        const d = await ctx.store.allocatePort('delta', HOST, { min: 7008, max: 7008 }, ctx.T);
        assert.ok(d.ok && d.assignment.port === 7008);
        await ctx.store.restoreAssignments([lost('delta', HOST, 7006, ctx.T - 10)]);
        const again = await ctx.store.allocatePort('delta', HOST, range, ctx.T);
        assert.ok(again.ok);
        assert.equal(again.created, false);
        assert.equal(again.assignment.port, 7006);

        const conflict = await ctx.store.upsertBackend(ctx.input({ tool: 'gamma', id: 'x', port: 7003 }));
        assert.deepEqual(conflict, { ok: false, reason: 'port_conflict', holder: 'alpha' });
        const next = await ctx.store.allocatePort('epsilon', HOST, range, ctx.T);
        assert.ok(next.ok);
        assert.equal(next.assignment.port, 7001);
      });

      it('restores more than 500 assignments: every free one created, its events carrying each exactly once', async () => {
        const n = 1234;
        const copy = Array.from({ length: n }, (_, i) => lost(`tool-${i}`, HOST, 20000 + i, ctx.T - i));
        // Some of them were taken since the loss by other tools.
        for (let i = 0; i < n; i += 123) assert.ok((await ctx.store.allocatePort(`new-${i}`, HOST, { min: 20000 + i, max: 20000 + i }, ctx.T)).ok);
        const { events } = await ctx.collect();
        const v = await ctx.versionNumber();

        const created = await ctx.store.restoreAssignments(copy);
        const expected = copy.filter((_, i) => i % 123 !== 0);
        assert.equal(created.length, expected.length);
        assert.deepEqual(plain(created.sort(byHostPort)), expected);
        assert.equal((await ctx.store.listAssignments()).length, n);

        // A store may split a long list into several mutations; each is one version and one event.
        const bumps = (await ctx.versionNumber()) - v;
        await waitFor('the restore events', () => events.length >= bumps, 3000, 5);
        assert.ok(bumps >= 1 && bumps <= Math.ceil(n / 500), `${bumps} versions for ${n} assignments`);
        assert.deepEqual(events.map((e) => e.version), Array.from({ length: bumps }, (_, i) => v + 1 + i));
        assert.deepEqual(plain(events.flatMap(upserted).sort(byHostPort)), expected);
        console.log(`      ${ctx.name}: ${created.length} of ${n} assignments restored in ${bumps} version(s)`);

        const own = await ctx.store.allocatePort('tool-777', HOST, { min: 1, max: 2 }, ctx.T);
        assert.deepEqual(plain(own), { ok: true, created: false, assignment: copy[777] });
      });
    });

    describe('restoreCredentials', () => {
      it('adds a token only when it is neither stored nor revoked, and revocations as putRevocation does', async () => {
        const v = await ctx.versionNumber();
        await ctx.store.putToken({ id: 'stored', tool: 'alpha', hash: 'new-hash', createdAt: ctx.T + 5 });
        await ctx.store.putRevocation({ id: 'revoked-before', tool: 'alpha', revokedAt: ctx.T + 5 });

        await ctx.store.restoreCredentials(
          [
            { id: 'stored', tool: 'alpha', hash: 'copy-hash', createdAt: ctx.T },
            { id: 'revoked-before', tool: 'alpha', hash: 'h', createdAt: ctx.T },
            { id: 'revoked-now', tool: 'beta', hash: 'h', createdAt: ctx.T },
            { id: 'lost', tool: 'beta', hash: 'lost-hash', createdAt: ctx.T },
          ],
          [
            { id: 'revoked-before', tool: 'alpha', revokedAt: ctx.T },
            { id: 'revoked-now', tool: 'beta', revokedAt: ctx.T + 1 },
          ],
        );
        assert.deepEqual(plain((await ctx.store.listTokens()).sort(byId)), [
          { id: 'lost', tool: 'beta', hash: 'lost-hash', createdAt: ctx.T },
          { id: 'stored', tool: 'alpha', hash: 'new-hash', createdAt: ctx.T + 5 },
        ]);
        assert.equal(await ctx.store.getToken('revoked-now'), null);
        assert.equal(await ctx.store.getToken('revoked-before'), null);
        assert.deepEqual(plain((await ctx.store.listRevocations()).sort(byId)), [
          { id: 'revoked-before', tool: 'alpha', revokedAt: ctx.T + 5 },
          { id: 'revoked-now', tool: 'beta', revokedAt: ctx.T + 1 },
        ]);
        assert.equal(await ctx.versionNumber(), v);
        await ctx.store.restoreCredentials([], []);
      });

      it('restores more than 500 of each, every revocation before any token: a token revoked in the same call never comes back', async () => {
        const revocations: Revocation[] = Array.from({ length: 1100 }, (_, i) => ({ id: `r${String(i).padStart(4, '0')}`, tool: 'alpha', revokedAt: ctx.T + i }));
        // The first 100 tokens are revoked by the last revocations (a later batch than any token's).
        const tokens: TokenRecord[] = [
          ...revocations.slice(1000).map((r) => ({ id: r.id, tool: 'alpha', hash: 'revoked', createdAt: ctx.T })),
          ...Array.from({ length: 1100 }, (_, i) => ({ id: `t${String(i).padStart(4, '0')}`, tool: 'beta', hash: `h${i}`, createdAt: ctx.T + i })),
        ];
        await ctx.store.restoreCredentials(tokens, revocations);
        const listed = (await ctx.store.listTokens()).sort(byId);
        assert.equal(listed.length, 1100);
        assert.deepEqual(plain(listed), tokens.slice(100));
        assert.deepEqual(plain((await ctx.store.listRevocations()).sort(byId)), revocations);
        for (const r of revocations.slice(1000, 1010)) assert.equal(await ctx.store.getToken(r.id), null);
      });
    });
  });
}
