import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { silentLogger } from '../../src/logger';
import { TableFeed } from '../../src/table/table-feed';
import { DurableCopy, readCopyFile, type RegistryCopy } from '../../src/registry/durable-copy';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import { StateRestorer, type RestoreCounts, type RestoreSource } from '../../src/registry/restorer';
import type { Store } from '../../src/registry/store';
import type { Assignment } from '../../src/registry/types';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

const HOST = '127.0.0.1';

function sorted(list: readonly Assignment[]): string[] {
  return list.map((a) => `${a.tool}@${a.host}:${a.port}`).sort();
}

async function register(store: Store, tool: string, port: number): Promise<void> {
  const r = await store.upsertBackend({ tool, id: 'x', url: `http://${HOST}:${port}`, host: HOST, port, ttl: 30, source: 'registered', now: Date.now() });
  assert.equal(r.ok, true, JSON.stringify(r));
}

async function allocate(store: Store, tool: string, port: number): Promise<void> {
  const r = await store.allocatePort(tool, HOST, { min: port, max: port }, Date.now());
  assert.ok(r.ok && r.created, JSON.stringify(r));
}

async function followed(feed: TableFeed, store: Store): Promise<void> {
  const want = await store.version();
  await waitFor('the feed to follow the store', async () => {
    const t = feed.current();
    return t !== null && t.epoch === want.epoch && t.version >= want.version;
  }, 5000, 10);
}

/** A copy as written to a file, for the restorer (its epoch is the store's before the loss). */
function fileCopy(over: Partial<RegistryCopy>): RegistryCopy {
  return { format: 1, writtenAt: 1, epoch: 'lost-epoch', version: 7, assignments: [], tokens: [], revocations: [], ...over };
}

const restorerDefaults = { windowMs: 60_000, logger: silentLogger() };

describe('durable copy of the registry', () => {
  let dir: string;
  const stops: Array<() => Promise<unknown> | unknown> = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-copy-'));
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function memoryFeed(): Promise<{ store: MemoryStore; feed: TableFeed }> {
    const store = new MemoryStore();
    const feed = new TableFeed(store, { pollMs: 50, carryOverMs: 30_000, logger: silentLogger() });
    await feed.start();
    stops.push(() => store.close(), () => feed.stop());
    return { store, feed };
  }

  function durableCopy(store: Store, feed: TableFeed, over: { leader?: () => boolean; restoring?: () => boolean; revoked?: Set<string>; file?: string | null } = {}): DurableCopy {
    const copy = new DurableCopy({
      store,
      table: feed,
      revokedIds: () => over.revoked ?? new Set(),
      isLeader: over.leader ?? (() => true),
      restoring: over.restoring ?? (() => false),
      file: over.file === undefined ? path.join(dir, 'registry-snapshot.json') : over.file,
      intervalMs: 60_000,
      logger: silentLogger(),
    });
    stops.push(() => copy.stop());
    return copy;
  }

  describe('DurableCopy', () => {
    it('takes the assignments of the followed table, with the createdAt it first saw them at', async () => {
      const { store, feed } = await memoryFeed();
      await allocate(store, 'alpha', 7000);
      await register(store, 'beta', 7001);
      await followed(feed, store);
      const copy = durableCopy(store, feed);
      const first = copy.copy();
      assert.deepEqual(sorted(first.assignments), ['alpha@127.0.0.1:7000', 'beta@127.0.0.1:7001']);
      const { epoch, version } = await store.version();
      assert.equal(first.epoch, epoch);
      assert.equal(first.version, version);

      assert.ok(await store.releasePort(HOST, 7000));
      await allocate(store, 'gamma', 7002);
      await followed(feed, store);
      const second = copy.copy();
      assert.deepEqual(sorted(second.assignments), ['beta@127.0.0.1:7001', 'gamma@127.0.0.1:7002']);
      const beta = (c: RegistryCopy) => c.assignments.find((a) => a.tool === 'beta')!.createdAt;
      assert.equal(beta(second), beta(first));
    });

    it("takes the operator's policies of the followed table, and forgets a removed one", async () => {
      const { store, feed } = await memoryFeed();
      await store.putPolicy({ kind: 'block', id: 'b1', cidr: '10.0.0.0/8', updatedAt: 1 });
      await store.putPolicy({ kind: 'maintenance', message: 'outage', updatedAt: 2 });
      await followed(feed, store);
      const copy = durableCopy(store, feed);
      assert.deepEqual(copy.copy().policies?.map((p) => p.kind).sort(), ['block', 'maintenance']);
      await store.removePolicy('maintenance');
      await followed(feed, store);
      assert.deepEqual(copy.copy().policies?.map((p) => p.kind), ['block']);
    });

    it('the leader writes the file by an atomic rename, only when its content changed; readCopyFile reads it back', async () => {
      const { store, feed } = await memoryFeed();
      await allocate(store, 'alpha', 7000);
      await store.putToken({ id: 't1', tool: 'alpha', hash: 'h1', createdAt: 1 });
      await followed(feed, store);
      const file = path.join(dir, 'sub', 'registry-snapshot.json');
      const copy = durableCopy(store, feed, { file });
      await copy.refresh();
      const written = readCopyFile(file);
      assert.ok(written);
      assert.deepEqual({ ...written, writtenAt: 0 }, { ...copy.copy(), writtenAt: 0 });
      assert.deepEqual(sorted(written.assignments), ['alpha@127.0.0.1:7000']);
      assert.deepEqual(written.tokens.map((t) => t.id), ['t1']);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const inode = statSync(file).ino;

      await copy.refresh();
      assert.equal(statSync(file).ino, inode, 'nothing changed: not written again');

      await allocate(store, 'beta', 7001);
      await followed(feed, store);
      await copy.refresh();
      assert.notEqual(statSync(file).ino, inode, 'a new file renamed over the old one, not the old one rewritten');
      assert.deepEqual(sorted(readCopyFile(file)!.assignments), ['alpha@127.0.0.1:7000', 'beta@127.0.0.1:7001']);
      assert.deepEqual(readdirSync(path.dirname(file)), ['registry-snapshot.json'], 'no temporary file left');
    });

    it('a non-leader writes no file, and neither does the leader while a write-back is pending', async () => {
      const { store, feed } = await memoryFeed();
      await allocate(store, 'alpha', 7000);
      await followed(feed, store);
      const file = path.join(dir, 'registry-snapshot.json');
      let leader = false;
      let restoring = true;
      const copy = durableCopy(store, feed, { file, leader: () => leader, restoring: () => restoring });
      await copy.refresh();
      assert.equal(readCopyFile(file), null);
      leader = true;
      await copy.refresh();
      assert.equal(readCopyFile(file), null, 'restoring: the table is the emptied one, the file is what will be restored');
      restoring = false;
      await copy.refresh();
      assert.deepEqual(sorted(readCopyFile(file)!.assignments), ['alpha@127.0.0.1:7000']);
      // Memory only: nothing is written anywhere.
      await durableCopy(store, feed, { file: null }).refresh();
      assert.deepEqual(readdirSync(dir), ['registry-snapshot.json']);
    });

    it('readCopyFile answers null for no file and refuses a damaged one', () => {
      const file = path.join(dir, 'copy.json');
      assert.equal(readCopyFile(file), null);
      writeFileSync(file, '{"format":1,"assignments":[]');
      assert.throws(() => readCopyFile(file), SyntaxError);
      writeFileSync(file, JSON.stringify({ format: 2, assignments: [], tokens: [], revocations: [] }));
      assert.throws(() => readCopyFile(file), /is not a registry copy of format 1/);
    });
  });

  describe('StateRestorer', () => {
    function restorer(store: Store, over: { leader?: () => boolean; memory?: () => RegistryCopy; restored?: Array<[RestoreSource, RestoreCounts]>; after?: () => void } = {}): StateRestorer {
      const r = new StateRestorer({
        ...restorerDefaults,
        store,
        memory: over.memory ?? (() => fileCopy({})),
        isLeader: over.leader ?? (() => true),
        afterRestore: async () => over.after?.(),
        onRestored: (source, counts) => over.restored?.push([source, counts]),
      });
      stops.push(() => r.stop());
      return r;
    }

    const lostCopy = fileCopy({
      assignments: [{ tool: 'gamma', host: HOST, port: 7002, createdAt: 5 }],
      tokens: [{ id: 't1', tool: 'gamma', hash: 'h1', createdAt: 5 }, { id: 't2', tool: 'gamma', hash: 'h2', createdAt: 5 }],
      revocations: [{ id: 't2', tool: 'gamma', revokedAt: 6 }],
      policies: [{ kind: 'block', id: 'b1', cidr: '203.0.113.0/24', updatedAt: 5 }],
    });

    it('fromFile pends only for a store at version 0, and not for no file', async () => {
      const empty = new MemoryStore();
      const r = restorer(empty);
      await r.fromFile(null);
      assert.equal(r.restoring, false);
      await r.fromFile(lostCopy);
      assert.equal(r.restoring, true);

      const used = new MemoryStore();
      await allocate(used, 'alpha', 7000);
      const other = restorer(used);
      await other.fromFile(lostCopy);
      assert.equal(other.restoring, false);
      await other.step();
      assert.equal(await used.getAssignment(HOST, 7002), null);
    });

    it('a pending write-back waits for leadership, then restores credentials and assignments once', async () => {
      const store = new MemoryStore();
      let leader = false;
      let after = 0;
      const restored: Array<[RestoreSource, RestoreCounts]> = [];
      const r = restorer(store, { leader: () => leader, restored, after: () => after++ });
      await r.fromFile(lostCopy);
      await r.step();
      await r.step();
      assert.equal(r.restoring, true);
      assert.deepEqual(await store.listAssignments(), []);
      assert.deepEqual(await store.listTokens(), []);

      leader = true;
      await r.step();
      assert.equal(r.restoring, false);
      assert.deepEqual(sorted(await store.listAssignments()), ['gamma@127.0.0.1:7002']);
      assert.deepEqual((await store.listTokens()).map((t) => t.id), ['t1'], 't2 is revoked in the copy');
      assert.deepEqual((await store.listRevocations()).map((t) => t.id), ['t2']);
      assert.deepEqual((await store.listPolicies()).map((p) => (p.kind === 'block' ? p.cidr : p.kind)), ['203.0.113.0/24']);
      assert.deepEqual(restored, [['file', { assignments: 1, tokens: 2, revocations: 1, policies: 1 }]]);
      assert.equal(after, 1);

      assert.ok(await store.releasePort(HOST, 7002));
      await r.step();
      assert.equal(await store.getAssignment(HOST, 7002), null, 'done: a later step writes nothing back');
    });

    it('once per epoch: of two restorers on one store, the first writes back and the second does not', async () => {
      const store = new MemoryStore();
      const restored: Array<[RestoreSource, RestoreCounts]> = [];
      const one = restorer(store, { restored });
      const two = restorer(store, { restored });
      await one.fromFile(lostCopy);
      await two.fromFile(fileCopy({ assignments: [{ tool: 'delta', host: HOST, port: 7003, createdAt: 5 }] }));
      await one.step();
      await two.step();
      assert.equal(one.restoring, false);
      assert.equal(two.restoring, false);
      assert.deepEqual(sorted(await store.listAssignments()), ['gamma@127.0.0.1:7002']);
      assert.equal(restored.length, 1);
    });

    it('a write-back that failed half-way is retried by the restorer that took the checkpoint', async () => {
      const real = new MemoryStore();
      let failures = 1;
      // The store refuses the first restoreAssignments, as a store that went down mid-way would.
      const flaky = new Proxy(real, {
        get(target, prop, receiver) {
          if (prop === 'restoreAssignments' && failures > 0)
            return async () => {
              failures--;
              throw new Error('store went away');
            };
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const r = restorer(flaky);
      await r.fromFile(lostCopy);
      await r.step();
      assert.equal(r.restoring, true, 'still pending after the failure');
      assert.deepEqual(await real.listAssignments(), []);
      await r.step();
      assert.equal(r.restoring, false);
      assert.deepEqual(sorted(await real.listAssignments()), ['gamma@127.0.0.1:7002']);
    });
  });

  describe('on a Redis store that loses its state', () => {
    const redis = new RedisServer();
    let raw: Redis;
    before(async function () {
      this.timeout(15_000);
      await redis.start();
      raw = new Redis(redis.url);
    });
    after(async () => {
      raw?.disconnect();
      await redis.stop();
    });

    async function redisFeed(carryOverMs = 30_000): Promise<{ store: RedisStore; feed: TableFeed; prefix: string }> {
      const prefix = `copy:${randomUUID()}:`;
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000, logger: silentLogger() });
      const feed = new TableFeed(store, { pollMs: 50, carryOverMs, logger: silentLogger() });
      await feed.start();
      stops.push(() => store.close(), () => feed.stop());
      return { store, feed, prefix };
    }

    async function emptyStore(prefix: string): Promise<void> {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }

    it('keeps token records and revocations when the store comes back empty', async function () {
      this.timeout(10_000);
      const { store, feed, prefix } = await redisFeed();
      for (const id of ['t1', 't2', 't3']) await store.putToken({ id, tool: 'alpha', hash: `h-${id}`, createdAt: 1 });
      await store.revokeToken('alpha', 't2');
      await store.putRevocation({ id: 't2', tool: 'alpha', revokedAt: 2 });
      // t3 is revoked in this process only (the Authenticator's revoke()).
      const copy = durableCopy(store, feed, { file: null, revoked: new Set(['t3']) });
      await copy.refresh();
      const before = copy.copy();
      assert.deepEqual(before.tokens.map((t) => t.id), ['t1']);
      assert.deepEqual(before.revocations.map((r) => [r.id, r.tool]).sort(), [['t2', 'alpha'], ['t3', 'alpha']]);
      assert.equal(before.revocations.find((r) => r.id === 't2')!.revokedAt, 2);

      await emptyStore(prefix);
      assert.deepEqual(await store.listTokens(), []);
      await store.putToken({ id: 't4', tool: 'beta', hash: 'h-t4', createdAt: 3 });
      await copy.refresh();
      const after = copy.copy();
      assert.deepEqual(after.tokens.map((t) => t.id).sort(), ['t1', 't4']);
      assert.deepEqual(after.revocations, before.revocations);
    });

    it('keeps the carried-over assignments of a lost table beside the new table, until the carry-over ends', async function () {
      this.timeout(10_000);
      const { store, feed, prefix } = await redisFeed(1500);
      await allocate(store, 'alpha', 7000);
      await register(store, 'beta', 7001);
      await followed(feed, store);
      const copy = durableCopy(store, feed, { file: null });
      const alphaAt = copy.copy().assignments.find((a) => a.tool === 'alpha')!.createdAt;

      await emptyStore(prefix);
      await allocate(store, 'gamma', 7002);
      await followed(feed, store);
      const during = copy.copy();
      assert.deepEqual(sorted(during.assignments), ['alpha@127.0.0.1:7000', 'beta@127.0.0.1:7001', 'gamma@127.0.0.1:7002']);
      assert.equal(during.epoch, (await store.version()).epoch);
      assert.equal(during.assignments.find((a) => a.tool === 'alpha')!.createdAt, alphaAt);

      await waitFor('the carry-over to end', async () => feed.carriedAssignments().length === 0, 5000, 20);
      assert.deepEqual(sorted(copy.copy().assignments), ['gamma@127.0.0.1:7002']);
    });

    it("writes the copy back on each 'state-lost' of kind 'writes' from the feed, not once per epoch", async function () {
      this.timeout(15_000);
      const { store, feed, prefix } = await redisFeed();
      const copy = durableCopy(store, feed, { file: null });
      const restored: Array<[RestoreSource, RestoreCounts]> = [];
      const r = new StateRestorer({ ...restorerDefaults, store, memory: () => copy.copy(), isLeader: () => true, afterRestore: async () => undefined, onRestored: (s, c) => restored.push([s, c]) });
      stops.push(() => r.stop());
      const losses: string[] = [];
      feed.on('state-lost', (l: { kind: string }) => losses.push(l.kind));
      r.watch(feed);
      await allocate(store, 'alpha', 7000);

      for (let round = 1; round <= 2; round++) {
        await allocate(store, `beta${round}`, 7000 + round);
        await followed(feed, store);
        // The write of beta is lost (a failover to a replica that never got it): its keys and its version.
        const { version } = await store.version();
        await raw
          .multi()
          .hdel(`${prefix}assign`, `${HOST}:${7000 + round}`)
          .zrem(`${prefix}host:${HOST}`, String(7000 + round))
          .hdel(`${prefix}assign:tool`, `beta${round}\n${HOST}`)
          .set(`${prefix}version`, String(version - 1))
          .exec();
        await waitFor(`loss ${round} noticed`, async () => losses.length === round, 5000, 10);
        assert.equal(losses[round - 1], 'writes');
        await waitFor(`write-back ${round}`, async () => {
          await r.step();
          return (await store.getAssignment(HOST, 7000 + round))?.tool === `beta${round}`;
        }, 5000, 20);
        assert.equal(restored.length, round);
        assert.equal(r.restoring, false);
      }
      console.log(`      ${restored.length} write-backs for ${losses.length} losses of writes at one epoch`);
    });
  });
});
