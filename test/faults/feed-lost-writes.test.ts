import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { silentLogger } from '../../src/logger';
import { TableFeed } from '../../src/table/table-feed';
import { RedisStore } from '../../src/registry/redis-store';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

/**
 * A failover to a replica that had not received the master's last writes leaves the store at the same
 * epoch but an older version. Here the older state is put back by hand (DUMP before, RESTORE after), so
 * the feed meets it without the resubscription a real failover also causes (test/faults/sentinel-failover
 * covers that path): only the version poll can notice.
 */
describe('route table feed when the store loses its latest writes (same epoch, older version)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: RedisStore;
  let feed: TableFeed;
  let raw: Redis;
  const prefix = 'lost:';

  async function register(tool: string, port: number) {
    const r = await store.upsertBackend({ tool, id: 'a', url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, ttl: 30, source: 'registered', now: Date.now() });
    assert.equal(r.ok, true);
  }
  const routed = (tool: string) => (feed.current()?.lookup(tool)?.backends.length ?? 0) > 0;

  before(async () => {
    redis = await new RedisServer().start();
    store = await RedisStore.connect({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000 });
    raw = new Redis(redis.url);
    raw.on('error', () => undefined);
    await register('kept', 31001);
    feed = new TableFeed(store, { pollMs: 100, carryOverMs: 2000, logger: silentLogger() });
    await feed.start();
  });
  after(async () => {
    await feed?.stop();
    await store?.close();
    raw?.disconnect();
    await redis?.stop();
  });

  it('reloads the older table, keeps the lost routes for one carry-over, then follows the store again', async () => {
    // Every key of the store, as a replica that stopped receiving here would hold them.
    const keys = await raw.keys(`${prefix}*`);
    const saved = await Promise.all(keys.map((k) => raw.dumpBuffer(k)));
    await register('lost', 31002);
    await waitFor('lost routed', async () => routed('lost'), 3000, 10);
    const ahead = feed.current()!.version;

    // The store goes back to the state before "lost" was registered.
    const restore = raw.multi();
    for (const k of await raw.keys(`${prefix}*`)) restore.del(k);
    keys.forEach((k, i) => restore.restore(k, 0, saved[i]!, 'REPLACE'));
    await restore.exec();
    const behind = Number(await raw.get(`${prefix}version`));
    assert.ok(behind < ahead);

    await waitFor('the feed reloads the older table', async () => feed.current()!.version === behind, 3000, 10);
    assert.ok(routed('lost'), 'a route the store lost is kept while heartbeats restore it');
    assert.ok(routed('kept'));

    // New changes are numbered from the store's (older) version again and must not be taken for old ones.
    await register('new', 31003);
    await waitFor('a change after the loss is applied', async () => routed('new'), 3000, 10);
    assert.equal(feed.current()!.version, behind + 1);

    // Nobody heartbeats "lost": once the carry-over ends it is gone.
    await waitFor('carry-over ends', async () => !routed('lost'), 6000, 50);
    assert.ok(routed('kept') && routed('new'));
  });
});
