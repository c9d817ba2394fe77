import assert from 'node:assert/strict';
import { renderStatusText } from '../../src/cli/status';
import { StatusSource } from '../../src/control/status-data';
import { PAGE_QUERY, renderStatusPage } from '../../src/control/status-page';
import { selectTools } from '../../src/control/status-filter';
import { silentLogger } from '../../src/logger';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import { TableFeed } from '../../src/table/table-feed';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

describe('status: bans and tool policies', function () {
  this.timeout(30_000);

  it('lists the bans in force, the tool policies and the maintenance switch, on the page and in the text', async () => {
    const store = new MemoryStore();
    const now = Date.now();
    await store.putPolicy({ kind: 'block', id: 'scraper', cidr: '203.0.113.0/24', tool: 'web', reason: 'scraping <script>', updatedAt: now, expiresAt: now + 60_000 });
    await store.putPolicy({ kind: 'block', id: 'bot', userAgent: '^BadBot/', updatedAt: now });
    await store.putPolicy({ kind: 'block', id: 'old', cidr: '10.0.0.0/8', updatedAt: now - 10_000, expiresAt: now - 1 });
    await store.putPolicy({ kind: 'tool', tool: 'web', maxConcurrent: 10, rateLimit: { perClientPerSecond: 5, burst: 10 }, stripPrefix: true, updatedAt: now });
    await store.putPolicy({ kind: 'maintenance', message: 'Planned outage', updatedAt: now });
    const r = await new StatusSource({ store }).report();
    assert.deepEqual(r.policies?.bans.map((b) => b.id), ['bot', 'scraper'], 'sorted by id, the expired one left out');
    assert.equal(r.policies?.banCount, 2);
    assert.deepEqual(r.policies?.maintenance, { message: 'Planned outage', until: null });
    assert.deepEqual(r.policies?.tools, [{ tool: 'web', maxConcurrent: 10, rateLimit: { perClientPerSecond: 5, burst: 10 }, stripPrefix: true }]);

    const text = renderStatusText(r);
    assert.match(text, /^Policies: +2 bans, 1 tool policy, MAINTENANCE ON for every tool: "Planned outage"$/m);
    assert.match(text, /^bot +user-agent \/\^BadBot\/\/ +\(every tool\) +\(until removed\)$/m);
    assert.match(text, /^scraper +cidr 203\.0\.113\.0\/24 +web +\S+Z +scraping <script>$/m);
    assert.match(text, /^web +maxConcurrent 10, rateLimit 5\/s burst 10, stripPrefix$/m);

    const page = renderStatusPage(r, { query: PAGE_QUERY, ...selectTools(r.tools, PAGE_QUERY) });
    assert.match(page, /<caption>Bans in force<\/caption>/);
    assert.match(page, /<td>scraping &lt;script&gt;<\/td>/);
    assert.ok(!page.includes('<script>scraping'), 'escaped');
    assert.match(page, /<caption>Tool policies<\/caption>/);
  });

  it("shows the route table's policies while the store is away", async () => {
    const redis = await new RedisServer().start();
    const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'status-policies:', commandTimeoutMs: 300, logger: silentLogger() });
    const feed = new TableFeed(store, { pollMs: 100, carryOverMs: 30_000, logger: silentLogger() });
    try {
      await feed.start();
      await store.putPolicy({ kind: 'block', id: 'kept', cidr: '198.51.100.0/24', updatedAt: Date.now() });
      await waitFor('the ban in the table', () => feed.current()?.policies.bans.length === 1, 5000, 10);
      await redis.kill();
      const r = await new StatusSource({ store, routes: feed, timeoutMs: 300 }).report();
      assert.equal(r.store.state, 'unreachable');
      assert.deepEqual(r.policies?.bans.map((b) => b.id), ['kept']);
    } finally {
      await feed.stop();
      await store.close();
      await redis.stop();
    }
  });
});
