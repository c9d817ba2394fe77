import assert from 'node:assert/strict';
import { blockKey, MAINTENANCE_KEY, toolPolicyKey } from '../../src/table/policy-records';
import type { PolicyRecord } from '../../src/registry/types';
import { collectingSink, plain, type StoreContext } from './store-context';

function byKind(a: PolicyRecord, b: PolicyRecord): number {
  const ka = JSON.stringify(a);
  const kb = JSON.stringify(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Operator policies (Store: putPolicy, removePolicy, getPolicy, listPolicies, restorePolicies). The rules
 * of the interface held here:
 * - a put is one routing mutation: one version, one `policy.upsert` event carrying the record as written;
 * - a removal is one routing mutation (`policy.remove` with the key); nothing removed: no version, no event;
 * - removePolicy with ifUpdatedAt removes only the record of that updatedAt (compare-and-delete);
 * - routeSnapshot and snapshot carry every policy with the routes, at the same version;
 * - restorePolicies creates only the keys that are free, in one event.
 */
export function policyContract(ctx: StoreContext): void {
  describe('policies', () => {
    const ban = (): PolicyRecord => ({ kind: 'block', id: 'b1', cidr: '203.0.113.0/24', reason: 'scraper', updatedAt: ctx.T, expiresAt: ctx.T + 60_000 });
    const toolPolicy = (): PolicyRecord => ({
      kind: 'tool',
      tool: 'alpha',
      maxConcurrent: 4,
      rateLimit: { perClientPerSecond: 0.5, burst: 3 },
      maintenance: { message: 'back soon – ünïcode "quoted" / slash', until: ctx.T + 5000 },
      stripPrefix: true,
      updatedAt: ctx.T,
    });

    it('stores a policy as written, one version and one policy.upsert event per put', async () => {
      const sub = await ctx.collect();
      const v = await ctx.versionNumber();
      await ctx.store.putPolicy(toolPolicy());
      assert.equal(await ctx.versionNumber(), v + 1);
      assert.deepEqual(plain(await ctx.store.getPolicy(toolPolicyKey('alpha'))), toolPolicy());
      const events = await ctx.eventsBeforeMarker(sub.events);
      assert.equal(events.length, 1);
      assert.equal(events[0].version, v + 1);
      assert.deepEqual(plain(events[0].changes), [{ kind: 'policy.upsert', policy: toolPolicy() }]);
    });

    it('replaces a record under the same key and lists every kind', async () => {
      await ctx.store.putPolicy(ban());
      await ctx.store.putPolicy({ ...ban(), reason: 'again', updatedAt: ctx.T + 1 } as PolicyRecord);
      await ctx.store.putPolicy(toolPolicy());
      const global: PolicyRecord = { kind: 'maintenance', message: 'outage', updatedAt: ctx.T };
      await ctx.store.putPolicy(global);
      const listed = plain(await ctx.store.listPolicies()).sort(byKind);
      assert.deepEqual(listed, [{ ...ban(), reason: 'again', updatedAt: ctx.T + 1 }, global, toolPolicy()].sort(byKind));
      assert.deepEqual(plain(await ctx.store.getPolicy(MAINTENANCE_KEY)), global);
      assert.equal(await ctx.store.getPolicy(blockKey('nope')), null);
    });

    it('removes a policy in one routing mutation; an absent one changes nothing', async () => {
      await ctx.store.putPolicy(ban());
      const sub = await ctx.collect();
      const v = await ctx.versionNumber();
      assert.equal(await ctx.store.removePolicy(blockKey('nope')), false);
      assert.equal(await ctx.versionNumber(), v);
      assert.equal(await ctx.store.removePolicy(blockKey('b1')), true);
      assert.equal(await ctx.versionNumber(), v + 1);
      assert.equal(await ctx.store.getPolicy(blockKey('b1')), null);
      const events = await ctx.eventsBeforeMarker(sub.events);
      assert.deepEqual(plain(events.map((e) => e.changes)), [[{ kind: 'policy.remove', key: blockKey('b1') }]]);
    });

    it('removes with ifUpdatedAt only the record of that updatedAt', async () => {
      await ctx.store.putPolicy(ban());
      const v = await ctx.versionNumber();
      assert.equal(await ctx.store.removePolicy(blockKey('b1'), ctx.T - 1), false);
      assert.equal(await ctx.versionNumber(), v);
      assert.notEqual(await ctx.store.getPolicy(blockKey('b1')), null);
      assert.equal(await ctx.store.removePolicy(blockKey('b1'), ctx.T), true);
      assert.equal(await ctx.store.getPolicy(blockKey('b1')), null);
    });

    it('hands every policy to a route snapshot and a snapshot, at the version of the routes', async () => {
      await ctx.store.putPolicy(ban());
      await ctx.store.putPolicy(toolPolicy());
      const sink = collectingSink();
      const v = await ctx.store.routeSnapshot(sink);
      assert.deepEqual(plain(sink.policies).sort(byKind), [ban(), toolPolicy()].sort(byKind));
      const snap = await ctx.store.snapshot();
      assert.equal(snap.version, v.version);
      assert.deepEqual(plain(snap.policies).sort(byKind), [ban(), toolPolicy()].sort(byKind));
    });

    it('restores only the policies whose key is free, in one event', async () => {
      const newer: PolicyRecord = { ...ban(), reason: 'written after the loss', updatedAt: ctx.T + 5 } as PolicyRecord;
      await ctx.store.putPolicy(newer);
      const sub = await ctx.collect();
      const v = await ctx.versionNumber();
      const created = await ctx.store.restorePolicies([ban(), toolPolicy()]);
      assert.deepEqual(plain(created), [toolPolicy()]);
      assert.equal(await ctx.versionNumber(), v + 1);
      assert.deepEqual(plain(await ctx.store.getPolicy(blockKey('b1'))), newer);
      const events = await ctx.eventsBeforeMarker(sub.events);
      assert.deepEqual(plain(events.map((e) => e.changes)), [[{ kind: 'policy.upsert', policy: toolPolicy() }]]);
      const after = await ctx.versionNumber();
      assert.deepEqual(await ctx.store.restorePolicies([ban()]), []);
      assert.equal(await ctx.versionNumber(), after);
    });
  });
}
