import assert from 'node:assert/strict';
import { silentLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { TableFeed } from '../../src/table/table-feed';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import type { Store } from '../../src/registry/store';
import type { ChangeEvent } from '../../src/registry/types';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';
import { metricValue } from '../support/metrics';

// switchboard_tools_lost: tools the store lost that are not back. The incident it is for: Redis restarted
// empty, launchers whose tokens went with it could not heartbeat, their tools stayed unrouted, and every
// alert had resolved while they did.

const HOST = '127.0.0.1';
const RANGE = { min: 41000, max: 41099 };

async function register(store: Store, tool: string, port: number, id = 'a') {
  const r = await store.upsertBackend({ tool, id, url: `http://${HOST}:${port}`, host: HOST, port, ttl: 30, source: 'registered', now: Date.now() });
  assert.equal(r.ok, true, JSON.stringify(r));
}

async function assign(store: Store, tool: string): Promise<number> {
  const r = await store.allocatePort(tool, HOST, RANGE, Date.now());
  assert.ok(r.ok);
  return r.assignment.port;
}

function routed(feed: TableFeed, tool: string): boolean {
  return (feed.current()?.lookup(tool)?.backends.length ?? 0) > 0;
}

/** A store that can lose everything, as a Redis restarted empty does. */
interface LosableStore {
  store: Store;
  restartEmpty(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The memory store restarted empty: a new MemoryStore (a new epoch) behind the same object. Subscribers
 * are moved to the new one and told to resync, as a Redis client is when its connection comes back.
 */
function losableMemoryStore(): LosableStore {
  let target = new MemoryStore();
  const subscribers: Array<{ onChange: (ev: ChangeEvent) => void; onResync: () => void; off: () => Promise<void> }> = [];
  const store = new Proxy({} as Store, {
    get(_t, prop) {
      if (prop === 'subscribe') {
        return async (onChange: (ev: ChangeEvent) => void, onResync: () => void) => {
          const sub = { onChange, onResync, off: await target.subscribe(onChange, onResync) };
          subscribers.push(sub);
          return () => sub.off();
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store,
    async restartEmpty() {
      const old = target;
      target = new MemoryStore();
      for (const sub of subscribers) {
        await sub.off();
        sub.off = await target.subscribe(sub.onChange, sub.onResync);
        sub.onResync();
      }
      await old.close();
    },
    close: () => target.close(),
  };
}

let redis: RedisServer;
let prefixN = 0;
before(async () => {
  redis = await new RedisServer().start();
});
after(async () => {
  await redis.stop();
});

const kinds: Array<[string, () => Promise<LosableStore>]> = [
  ['memory', async () => losableMemoryStore()],
  [
    'redis',
    async () => {
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: `lost${++prefixN}:`, commandTimeoutMs: 1000, logger: silentLogger() });
      return {
        store,
        async restartEmpty() {
          await redis.wipe();
          await redis.start();
        },
        close: () => store.close(),
      };
    },
  ],
];

for (const [name, make] of kinds) {
  describe(`lost tools after the store lost its state (${name} store)`, function () {
    this.timeout(30_000);
    let losable: LosableStore;
    let store: Store;
    let feed: TableFeed;

    async function startFeed(carryOverMs: number) {
      feed = new TableFeed(store, { pollMs: 50, carryOverMs, logger: silentLogger() });
      await feed.start();
    }

    async function restartEmpty() {
      const reloads = feed.reloads;
      const epoch = feed.current()!.epoch;
      await losable.restartEmpty();
      await waitFor('the feed follows the new epoch', async () => feed.storeUp && feed.reloads > reloads && feed.current()!.epoch !== epoch, 10_000, 20);
    }

    beforeEach(async () => {
      losable = await make();
      store = losable.store;
    });
    afterEach(async () => {
      await feed.stop();
      await losable.close();
      if (!redis.running) await redis.start();
    });

    it('counts the tools of the old table as lost while their carried routes still answer, and names them in /metrics', async () => {
      await register(store, 'wiki-bot', 30001);
      await register(store, 'citation-hunt', 30002);
      await assign(store, 'idle-holder');
      await startFeed(30_000);
      const metrics = new Metrics();
      metrics.observeTable(feed);
      assert.deepEqual(feed.lostTools(), []);
      assert.equal(metricValue(await metrics.registry.metrics(), 'switchboard_tools_lost'), 0);

      await restartEmpty();
      assert.deepEqual(feed.lostTools(), ['citation-hunt', 'idle-holder', 'wiki-bot']);
      assert.ok(routed(feed, 'wiki-bot'), 'the carry-over still routes it: that is no reason to count it as back');
      const text = await metrics.registry.metrics();
      console.log(`      ${name}: after the restart switchboard_tools_lost = ${metricValue(text, 'switchboard_tools_lost')}`);
      assert.equal(metricValue(text, 'switchboard_tools_lost'), 3);
      for (const tool of ['wiki-bot', 'citation-hunt', 'idle-holder']) assert.equal(metricValue(text, 'switchboard_lost_tool', { tool }), 1, tool);
    });

    it('a heartbeat or a port request re-creating a tool takes it out; the rest stay lost after the carry-over ends', async () => {
      await register(store, 'wiki-bot', 30001);
      await register(store, 'citation-hunt', 30002);
      await assign(store, 'idle-holder');
      await startFeed(1500);
      const metrics = new Metrics();
      metrics.observeTable(feed);
      await restartEmpty();
      assert.equal(feed.lostTools().length, 3);

      await register(store, 'wiki-bot', 30001);
      await waitFor('the heartbeat takes wiki-bot out', async () => !feed.lostTools().includes('wiki-bot'), 5000, 10);
      await assign(store, 'idle-holder');
      await waitFor('the port request takes idle-holder out', async () => !feed.lostTools().includes('idle-holder'), 5000, 10);
      assert.deepEqual(feed.lostTools(), ['citation-hunt']);

      await waitFor('the carry-over ends', async () => !routed(feed, 'citation-hunt'), 10_000, 50);
      await feed.requestReload('a full read after the carry-over');
      assert.deepEqual(feed.lostTools(), ['citation-hunt'], 'unrouted and not back: still lost');
      const text = await metrics.registry.metrics();
      console.log(`      ${name}: after the carry-over ended switchboard_tools_lost = ${metricValue(text, 'switchboard_tools_lost')}`);
      assert.equal(metricValue(text, 'switchboard_tools_lost'), 1);
      assert.equal(metricValue(text, 'switchboard_lost_tool', { tool: 'citation-hunt' }), 1);
      assert.ok(Number.isNaN(metricValue(text, 'switchboard_lost_tool', { tool: 'wiki-bot' })));

      await register(store, 'citation-hunt', 30002);
      await waitFor('back at last', async () => feed.lostTools().length === 0, 5000, 10);
      assert.equal(metricValue(await metrics.registry.metrics(), 'switchboard_tools_lost'), 0);
    });

    it('deliberately released ports and deregistered backends are not lost, before the loss or after a tool came back', async () => {
      const released = await assign(store, 'released-early');
      await register(store, 'deregistered-early', 30003);
      await register(store, 'comes-back', 30004);
      await register(store, 'stays-away', 30005);
      await startFeed(30_000);
      assert.ok(await store.releasePort(HOST, released));
      // A registration holds its port's assignment too: gone for good once both are given up.
      assert.equal(await store.removeBackend('deregistered-early', 'a'), true);
      assert.ok(await store.releasePort(HOST, 30003));
      await waitFor('the removals applied', async () => !feed.current()!.lookup('released-early') && !feed.current()!.lookup('deregistered-early'), 5000, 10);

      await restartEmpty();
      assert.deepEqual(feed.lostTools(), ['comes-back', 'stays-away']);
      // Back with a port, which it then gives up on purpose (and the backend whose heartbeat made it).
      const port = await assign(store, 'comes-back');
      await waitFor('comes-back is back', async () => !feed.lostTools().includes('comes-back'), 5000, 10);
      assert.ok(await store.releasePort(HOST, port));
      await waitFor('the release applied', async () => !feed.current()!.lookup('comes-back')?.assignments.length, 5000, 10);
      await feed.requestReload('test');
      assert.deepEqual(feed.lostTools(), ['stays-away']);
    });

    it('a second loss within the carry-over keeps the first loss\'s tools and adds those registered since', async () => {
      await register(store, 'steady', 30006);
      await assign(store, 'holder');
      await startFeed(20_000);
      await restartEmpty();
      assert.deepEqual(feed.lostTools(), ['holder', 'steady']);
      await register(store, 'newcomer', 30007);
      await waitFor('newcomer routed', async () => routed(feed, 'newcomer'), 5000, 10);
      assert.deepEqual(feed.lostTools(), ['holder', 'steady']);

      await restartEmpty();
      console.log(`      ${name}: after the second restart ${feed.lostTools().length} tools lost: ${feed.lostTools().join(', ')}`);
      assert.deepEqual(feed.lostTools(), ['holder', 'newcomer', 'steady']);
      assert.ok(routed(feed, 'steady') && routed(feed, 'newcomer'), 'both still carried');
    });
  });
}
