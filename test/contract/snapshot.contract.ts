import assert from 'node:assert/strict';
import type { RouteRecord } from '../../src/registry/types';
import { HOST, HOST2, byHostPort, byId, collectingSink, okResult, plain, type StoreContext } from './store-context';

/**
 * Reading the table (Store: snapshot, routeSnapshot). The rules of the interface held here:
 * - snapshot answers everything a proxy routes on at one consistent version;
 * - routeSnapshot hands its sink every backend (its RouteRecord) and every assignment of the table at the
 *   version it answers, also while routes are being written; a record may arrive twice (the last one
 *   counts), and what the sink received since its last restart() is that table.
 */

function routeFields(r: RouteRecord): RouteRecord {
  return { tool: r.tool, id: r.id, url: r.url, source: r.source };
}

/** The tools named, each once: a record handed twice counts once (the contract allows it). */
function toolSet(list: { tool: string }[]): Set<string> {
  return new Set(list.map((x) => x.tool));
}

function expectedTools(prefix: string, n: number): Set<string> {
  return new Set(Array.from({ length: n }, (_, i) => `${prefix}-${i}`));
}

export function snapshotContract(ctx: StoreContext): void {
  describe('table snapshot', () => {
    it('snapshots every backend and assignment at one version', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, clientVersion: 'v1' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5002, source: 'discovered' })));
      await ctx.store.allocatePort('gamma', HOST2, { min: 9000, max: 9000 }, ctx.T);
      const snap = await ctx.store.snapshot();
      assert.equal(snap.version, await ctx.versionNumber());
      assert.deepEqual(plain(snap.backends.sort(byId)), [
        {
          tool: 'alpha',
          id: 'a1',
          url: `http://${HOST}:5001`,
          source: 'registered',
          registeredAt: ctx.T,
          lastHeartbeat: ctx.T,
          expiresAt: ctx.T + 30_000,
          ttl: 30,
          clientVersion: 'v1',
        },
        {
          tool: 'beta',
          id: 'b1',
          url: `http://${HOST}:5002`,
          source: 'discovered',
          registeredAt: ctx.T,
          lastHeartbeat: ctx.T,
          expiresAt: ctx.T + 30_000,
          ttl: 30,
        },
      ]);
      assert.deepEqual(plain(snap.assignments.sort(byHostPort)), [
        { tool: 'alpha', host: HOST, port: 5001, createdAt: ctx.T },
        { tool: 'beta', host: HOST, port: 5002, createdAt: ctx.T },
        { tool: 'gamma', host: HOST2, port: 9000, createdAt: ctx.T },
      ]);
    });

    it('answers an empty snapshot for an empty store', async () => {
      const snap = await ctx.store.snapshot();
      assert.deepEqual(snap.backends, []);
      assert.deepEqual(snap.assignments, []);
    });

    it('hands every backend (as its route record) and assignment of one version to a routeSnapshot sink', async () => {
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'alpha', id: 'a1', port: 5001, clientVersion: 'v1' })));
      okResult(await ctx.store.upsertBackend(ctx.input({ tool: 'beta', id: 'b1', port: 5002, source: 'discovered' })));
      await ctx.store.allocatePort('gamma', HOST2, { min: 9000, max: 9000 }, ctx.T);
      const sink = collectingSink();
      const v = await ctx.store.routeSnapshot(sink);
      assert.deepEqual(v, await ctx.store.version());
      assert.deepEqual(sink.backends.map(routeFields).sort(byId), [
        { tool: 'alpha', id: 'a1', url: `http://${HOST}:5001`, source: 'registered' },
        { tool: 'beta', id: 'b1', url: `http://${HOST}:5002`, source: 'discovered' },
      ]);
      assert.deepEqual(plain(sink.assignments.sort(byHostPort)), [
        { tool: 'alpha', host: HOST, port: 5001, createdAt: ctx.T },
        { tool: 'beta', host: HOST, port: 5002, createdAt: ctx.T },
        { tool: 'gamma', host: HOST2, port: 9000, createdAt: ctx.T },
      ]);
    });

    it('hands nothing to a routeSnapshot sink for an empty store', async () => {
      const sink = collectingSink();
      const v = await ctx.store.routeSnapshot(sink);
      assert.deepEqual(v, await ctx.store.version());
      assert.deepEqual(sink.backends, []);
      assert.deepEqual(sink.assignments, []);
    });

    it('hands a table of several thousand routes to a routeSnapshot sink whole', async () => {
      // More than one page of a store that reads in pages.
      const n = 2500;
      await ctx.writeTools('t', 0, n);
      const sink = collectingSink();
      const v = await ctx.store.routeSnapshot(sink);
      assert.equal(v.version, await ctx.versionNumber());
      assert.deepEqual(toolSet(sink.backends), expectedTools('t', n));
      assert.deepEqual(toolSet(sink.assignments), expectedTools('t', n));
    });

    it('answers the table of the version it reports while routes are being written', async () => {
      await ctx.writeTools('base', 0, 2500);
      const v0 = await ctx.versionNumber();
      // Each write adds one backend and its assignment: one version step. The table at version v has
      // the first v - v0 of them, and exactly those.
      const total = 400;
      let writing = true;
      const writer = (async () => {
        try {
          for (let i = 0; i < total; i++) okResult(await ctx.store.upsertBackend(ctx.input({ tool: `w-${i}`, id: 'x', port: 20000 + i })));
        } finally {
          writing = false;
        }
      })();
      let reads = 0;
      const deadline = Date.now() + 15_000;
      while ((writing || reads < 2) && reads < 30 && Date.now() < deadline) {
        const sink = collectingSink();
        const v = await ctx.store.routeSnapshot(sink);
        reads++;
        const written = v.version - v0;
        assert.ok(written >= 0 && written <= total, `version ${v.version} outside [${v0}, ${v0 + total}]`);
        const want = new Set([...expectedTools('base', 2500), ...expectedTools('w', written)]);
        assert.deepEqual(toolSet(sink.backends), want, `backends at version ${v.version}`);
        assert.deepEqual(toolSet(sink.assignments), want, `assignments at version ${v.version}`);
      }
      await writer;
    });
  });
}
