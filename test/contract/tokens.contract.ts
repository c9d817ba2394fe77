import assert from 'node:assert/strict';
import type { TokenRecord } from '../../src/registry/types';
import { byId, plain, type StoreContext } from './store-context';

/**
 * Tool tokens, stored as hashes only (Store: putToken, getToken, revokeToken, listTokens, putRevocation,
 * listRevocations). The rules of the interface held here:
 * - revokeToken answers false when the token did not exist or belongs to another tool;
 * - revocations are never removed: a revoked id stays revoked (idempotent: the first revocation is kept);
 * - tokens and revocations are no routing mutation: the table version does not move.
 */
export function tokenContract(ctx: StoreContext): void {
  describe('tokens', () => {
    it('stores, reads and revokes a token by its owner only', async () => {
      const rec = { id: 'tok1', tool: 'alpha', hash: 'sha256:abc', createdAt: ctx.T };
      assert.equal(await ctx.store.getToken('tok1'), null);
      await ctx.store.putToken(rec);
      assert.deepEqual(plain(await ctx.store.getToken('tok1')), rec);

      assert.equal(await ctx.store.revokeToken('beta', 'tok1'), false);
      assert.deepEqual(plain(await ctx.store.getToken('tok1')), rec);

      assert.equal(await ctx.store.revokeToken('alpha', 'tok1'), true);
      assert.equal(await ctx.store.getToken('tok1'), null);
      assert.equal(await ctx.store.revokeToken('alpha', 'tok1'), false);
      assert.equal(await ctx.store.revokeToken('alpha', 'never'), false);
    });

    it('keeps tokens apart and lets putToken replace a record', async () => {
      await ctx.store.putToken({ id: 't1', tool: 'alpha', hash: 'h1', createdAt: ctx.T });
      await ctx.store.putToken({ id: 't2', tool: 'beta', hash: 'h2', createdAt: ctx.T });
      await ctx.store.putToken({ id: 't1', tool: 'alpha', hash: 'h1b', createdAt: ctx.T + 1 });
      assert.equal((await ctx.store.getToken('t1'))?.hash, 'h1b');
      assert.equal((await ctx.store.getToken('t2'))?.tool, 'beta');
    });

    it('does not touch the route table version', async () => {
      const v = await ctx.versionNumber();
      await ctx.store.putToken({ id: 't1', tool: 'alpha', hash: 'h1', createdAt: ctx.T });
      await ctx.store.revokeToken('alpha', 't1');
      assert.equal(await ctx.versionNumber(), v);
    });
  });

  describe('token and revocation lists', () => {
    it('lists the stored token records; a revoked record is gone from the list', async () => {
      assert.deepEqual(await ctx.store.listTokens(), []);
      const records: TokenRecord[] = [
        { id: 't1', tool: 'alpha', hash: 'h1', createdAt: ctx.T },
        { id: 't2', tool: 'beta', hash: 'h2', createdAt: ctx.T + 1 },
        { id: 't3', tool: 'alpha', hash: 'h3', createdAt: ctx.T + 2 },
      ];
      for (const r of records) await ctx.store.putToken(r);
      assert.deepEqual(plain((await ctx.store.listTokens()).sort(byId)), records);
      assert.equal(await ctx.store.revokeToken('alpha', 't1'), true);
      assert.deepEqual(plain((await ctx.store.listTokens()).sort(byId)), records.slice(1));
    });

    it('keeps the first revocation of an id (idempotent) and lists them, without touching the table version', async () => {
      const v = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.listRevocations(), []);
      await ctx.store.putRevocation({ id: 't1', tool: 'alpha', revokedAt: ctx.T });
      await ctx.store.putRevocation({ id: 't2', tool: 'beta', revokedAt: ctx.T + 1 });
      await ctx.store.putRevocation({ id: 't1', tool: 'alpha', revokedAt: ctx.T + 99 });
      assert.deepEqual(plain((await ctx.store.listRevocations()).sort(byId)), [
        { id: 't1', tool: 'alpha', revokedAt: ctx.T },
        { id: 't2', tool: 'beta', revokedAt: ctx.T + 1 },
      ]);
      // A revocation is its own record: the token records are untouched by it.
      await ctx.store.putToken({ id: 't3', tool: 'alpha', hash: 'h3', createdAt: ctx.T });
      await ctx.store.putRevocation({ id: 't3', tool: 'alpha', revokedAt: ctx.T + 2 });
      assert.equal((await ctx.store.listRevocations()).length, 3);
      assert.equal(await ctx.versionNumber(), v);
    });
  });
}
