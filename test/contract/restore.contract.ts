import assert from 'node:assert/strict';
import type { Store } from '../../src/registry/store';
import type { Assignment, Change, ChangeEvent, Revocation, TokenRecord, UpsertBackendInput } from '../../src/registry/types';
import { HOST, HOST2, byHostPort, byId, plain, type StoreFactory } from './store.contract';
import { waitFor, sleep } from '../support/wait';

/**
 * The store's part in writing back a registry's durable copy after the store lost its state
 * (src/registry/restorer.ts): restoring assignments and credentials, and the token and revocation lists the
 * copy is taken from. Run by every store runner beside storeContract, with the same factory.
 */
export function restoreContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}: durable copy write-back`, function () {
    this.timeout(20000);

    let store: Store;
    let unsubscribes: Array<() => Promise<void>> = [];
    let T: number;

    beforeEach(async () => {
      unsubscribes = [];
      store = await factory.create();
      T = Date.now();
    });

    afterEach(async () => {
      for (const u of unsubscribes) await u().catch(() => undefined);
      await store.close().catch(() => undefined);
      if (factory.cleanup) await factory.cleanup();
    });

    async function collect(): Promise<ChangeEvent[]> {
      const events: ChangeEvent[] = [];
      unsubscribes.push(await store.subscribe((e) => events.push(e), () => undefined));
      return events;
    }

    async function versionNumber(): Promise<number> {
      return (await store.version()).version;
    }

    function heartbeat(tool: string, host: string, port: number): UpsertBackendInput {
      return { tool, id: 'x', url: `http://${host}:${port}`, host, port, ttl: 30, source: 'registered', now: T };
    }

    function upserted(e: ChangeEvent): Assignment[] {
      return e.changes
        .filter((c): c is Extract<Change, { kind: 'assignment.upsert' }> => c.kind === 'assignment.upsert')
        .map((c) => c.assignment);
    }

    const lost = (tool: string, host: string, port: number, createdAt: number): Assignment => ({ tool, host, port, createdAt });

    describe('restoreAssignments', () => {
      it('creates only free host:ports, keeping their createdAt, and answers the created ones', async () => {
        // Written since the loss: alpha took 7000 again itself, beta's heartbeat took 7001.
        const alpha = await store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, T + 50);
        assert.ok(alpha.ok);
        assert.equal((await store.upsertBackend(heartbeat('beta', HOST, 7001))).ok, true);

        const created = await store.restoreAssignments([
          lost('alpha', HOST, 7000, T - 1000),
          lost('gamma', HOST, 7001, T - 900),
          lost('gamma', HOST, 7002, T - 800),
          lost('delta', HOST2, 7000, T - 700),
        ]);
        assert.deepEqual(plain(created.sort(byHostPort)), [
          lost('gamma', HOST, 7002, T - 800),
          lost('delta', HOST2, 7000, T - 700),
        ]);
        assert.deepEqual(plain((await store.listAssignments()).sort(byHostPort)), [
          lost('alpha', HOST, 7000, T + 50),
          lost('beta', HOST, 7001, T),
          lost('gamma', HOST, 7002, T - 800),
          lost('delta', HOST2, 7000, T - 700),
        ]);
      });

      it('is one routing mutation: one version and one event with every created assignment; none when nothing is created', async () => {
        await store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, T);
        const events = await collect();
        const v = await versionNumber();
        const copy = [lost('alpha', HOST, 7000, T - 5), lost('beta', HOST, 7001, T - 4), lost('gamma', HOST, 7002, T - 3), lost('delta', HOST2, 7001, T - 2)];

        const created = await store.restoreAssignments(copy);
        assert.equal(created.length, 3);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the restore event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].version, v + 1);
        assert.deepEqual(plain(upserted(events[0]).sort(byHostPort)), plain(created.sort(byHostPort)));
        assert.equal(events[0].changes.length, 3);

        // Everything is held now: the same copy again creates nothing and publishes nothing.
        assert.deepEqual(await store.restoreAssignments(copy), []);
        assert.deepEqual(await store.restoreAssignments([]), []);
        assert.equal(await versionNumber(), v + 1);
        assert.ok(await store.releasePort(HOST2, 7001));
        await waitFor('the release event', () => events.length >= 2, 3000, 5);
        await sleep(30);
        assert.equal(events.length, 2);
        assert.equal(events[1].version, v + 2);
        assert.equal(events[1].changes[0].kind, 'assignment.remove');
      });

      it("keeps the tool-on-host index: allocatePort answers the tool's restored assignment, and other tools cannot take it", async () => {
        const range = { min: 7000, max: 7009 };
        await store.restoreAssignments([lost('alpha', HOST, 7003, T - 10), lost('beta', HOST, 7005, T - 10), lost('beta', HOST2, 7001, T - 10)]);
        const a = await store.allocatePort('alpha', HOST, range, T);
        assert.deepEqual(plain(a), { ok: true, created: false, assignment: lost('alpha', HOST, 7003, T - 10) });
        const b = await store.allocatePort('beta', HOST2, range, T);
        assert.deepEqual(plain(b), { ok: true, created: false, assignment: lost('beta', HOST2, 7001, T - 10) });

        // New tools get the lowest port no restored assignment holds.
        const c = await store.allocatePort('gamma', HOST, range, T);
        assert.ok(c.ok && c.created && c.assignment.port === 7000);
        // A restored port lower than the tool's live one becomes the one answered.
        const d = await store.allocatePort('delta', HOST, { min: 7008, max: 7008 }, T);
        assert.ok(d.ok && d.assignment.port === 7008);
        await store.restoreAssignments([lost('delta', HOST, 7006, T - 10)]);
        const again = await store.allocatePort('delta', HOST, range, T);
        assert.ok(again.ok);
        assert.equal(again.created, false);
        assert.equal(again.assignment.port, 7006);

        const conflict = await store.upsertBackend(heartbeat('gamma', HOST, 7003));
        assert.deepEqual(conflict, { ok: false, reason: 'port_conflict', holder: 'alpha' });
        const next = await store.allocatePort('epsilon', HOST, range, T);
        assert.ok(next.ok);
        assert.equal(next.assignment.port, 7001);
      });

      it('restores more than 500 assignments: every free one created, its events carrying each exactly once', async () => {
        const n = 1234;
        const copy = Array.from({ length: n }, (_, i) => lost(`tool-${i}`, HOST, 20000 + i, T - i));
        // Some of them were taken since the loss by other tools.
        for (let i = 0; i < n; i += 123) assert.ok((await store.allocatePort(`new-${i}`, HOST, { min: 20000 + i, max: 20000 + i }, T)).ok);
        const events = await collect();
        const v = await versionNumber();

        const created = await store.restoreAssignments(copy);
        const expected = copy.filter((_, i) => i % 123 !== 0);
        assert.equal(created.length, expected.length);
        assert.deepEqual(plain(created.sort(byHostPort)), expected);
        assert.equal((await store.listAssignments()).length, n);

        // A store may split a long list into several mutations; each is one version and one event.
        const bumps = (await versionNumber()) - v;
        await waitFor('the restore events', () => events.length >= bumps, 3000, 5);
        assert.ok(bumps >= 1 && bumps <= Math.ceil(n / 500), `${bumps} versions for ${n} assignments`);
        assert.deepEqual(events.map((e) => e.version), Array.from({ length: bumps }, (_, i) => v + 1 + i));
        assert.deepEqual(plain(events.flatMap(upserted).sort(byHostPort)), expected);
        console.log(`      ${name}: ${created.length} of ${n} assignments restored in ${bumps} version(s)`);

        const own = await store.allocatePort('tool-777', HOST, { min: 1, max: 2 }, T);
        assert.deepEqual(plain(own), { ok: true, created: false, assignment: copy[777] });
      });
    });

    describe('token and revocation lists', () => {
      it('lists the stored token records; a revoked record is gone from the list', async () => {
        assert.deepEqual(await store.listTokens(), []);
        const records: TokenRecord[] = [
          { id: 't1', tool: 'alpha', hash: 'h1', createdAt: T },
          { id: 't2', tool: 'beta', hash: 'h2', createdAt: T + 1 },
          { id: 't3', tool: 'alpha', hash: 'h3', createdAt: T + 2 },
        ];
        for (const r of records) await store.putToken(r);
        assert.deepEqual(plain((await store.listTokens()).sort(byId)), records);
        assert.equal(await store.revokeToken('alpha', 't1'), true);
        assert.deepEqual(plain((await store.listTokens()).sort(byId)), records.slice(1));
      });

      it('keeps the first revocation of an id (idempotent) and lists them, without touching the table version', async () => {
        const v = await versionNumber();
        assert.deepEqual(await store.listRevocations(), []);
        await store.putRevocation({ id: 't1', tool: 'alpha', revokedAt: T });
        await store.putRevocation({ id: 't2', tool: 'beta', revokedAt: T + 1 });
        await store.putRevocation({ id: 't1', tool: 'alpha', revokedAt: T + 99 });
        assert.deepEqual(plain((await store.listRevocations()).sort(byId)), [
          { id: 't1', tool: 'alpha', revokedAt: T },
          { id: 't2', tool: 'beta', revokedAt: T + 1 },
        ]);
        // A revocation is its own record: the token records are untouched by it.
        await store.putToken({ id: 't3', tool: 'alpha', hash: 'h3', createdAt: T });
        await store.putRevocation({ id: 't3', tool: 'alpha', revokedAt: T + 2 });
        assert.equal((await store.listRevocations()).length, 3);
        assert.equal(await versionNumber(), v);
      });
    });

    describe('restoreCredentials', () => {
      it('adds a token only when it is neither stored nor revoked, and revocations as putRevocation does', async () => {
        const v = await versionNumber();
        await store.putToken({ id: 'stored', tool: 'alpha', hash: 'new-hash', createdAt: T + 5 });
        await store.putRevocation({ id: 'revoked-before', tool: 'alpha', revokedAt: T + 5 });

        await store.restoreCredentials(
          [
            { id: 'stored', tool: 'alpha', hash: 'copy-hash', createdAt: T },
            { id: 'revoked-before', tool: 'alpha', hash: 'h', createdAt: T },
            { id: 'revoked-now', tool: 'beta', hash: 'h', createdAt: T },
            { id: 'lost', tool: 'beta', hash: 'lost-hash', createdAt: T },
          ],
          [
            { id: 'revoked-before', tool: 'alpha', revokedAt: T },
            { id: 'revoked-now', tool: 'beta', revokedAt: T + 1 },
          ],
        );
        assert.deepEqual(plain((await store.listTokens()).sort(byId)), [
          { id: 'lost', tool: 'beta', hash: 'lost-hash', createdAt: T },
          { id: 'stored', tool: 'alpha', hash: 'new-hash', createdAt: T + 5 },
        ]);
        assert.equal(await store.getToken('revoked-now'), null);
        assert.equal(await store.getToken('revoked-before'), null);
        assert.deepEqual(plain((await store.listRevocations()).sort(byId)), [
          { id: 'revoked-before', tool: 'alpha', revokedAt: T + 5 },
          { id: 'revoked-now', tool: 'beta', revokedAt: T + 1 },
        ]);
        assert.equal(await versionNumber(), v);
        await store.restoreCredentials([], []);
      });

      it('restores more than 500 of each, every revocation before any token: a token revoked in the same call never comes back', async () => {
        const revocations: Revocation[] = Array.from({ length: 1100 }, (_, i) => ({ id: `r${String(i).padStart(4, '0')}`, tool: 'alpha', revokedAt: T + i }));
        // The first 100 tokens are revoked by the last revocations (a later batch than any token's).
        const tokens: TokenRecord[] = [
          ...revocations.slice(1000).map((r) => ({ id: r.id, tool: 'alpha', hash: 'revoked', createdAt: T })),
          ...Array.from({ length: 1100 }, (_, i) => ({ id: `t${String(i).padStart(4, '0')}`, tool: 'beta', hash: `h${i}`, createdAt: T + i })),
        ];
        await store.restoreCredentials(tokens, revocations);
        const listed = (await store.listTokens()).sort(byId);
        assert.equal(listed.length, 1100);
        assert.deepEqual(plain(listed), tokens.slice(100));
        assert.deepEqual(plain((await store.listRevocations()).sort(byId)), revocations);
        for (const r of revocations.slice(1000, 1010)) assert.equal(await store.getToken(r.id), null);
      });
    });
  });
}
