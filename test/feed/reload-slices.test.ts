import assert from 'node:assert/strict';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import type { Store } from '../../src/registry/store';
import type { RouteSink } from '../../src/table/records';
import type { RouteTable } from '../../src/table/route-table';
import { TableFeed, type TableStore } from '../../src/table/table-feed';
import { RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** Tools holding a port each: the records a full reload reads (one hash field each), written in batches. */
const TOOLS = 100_000;
/**
 * Records the feed's builder may get in one turn of the event loop, at most. Read a page of 1,000 at a
 * time, a page (or more) went in one go.
 */
const MAX_RECORDS_PER_TURN = 500;
/** Turns the build (after the read) must give away, at least: one per 4,000 entries. In one go, it gave none. */
const MIN_BUILD_TURNS = TOOLS / 4000;

async function register(store: Store, tool: string, port: number): Promise<void> {
  const r = await store.upsertBackend({ tool, id: 'a', url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, ttl: 3600, source: 'registered', now: Date.now() });
  assert.equal(r.ok, true, JSON.stringify(r));
}

function routed(feed: TableFeed, tool: string): boolean {
  return (feed.current()?.lookup(tool)?.backends.length ?? 0) > 0;
}

/** What the feed's builder was handed by the store's read so far, and whether that read has ended. */
interface ReadProgress {
  records: number;
  done: boolean;
}

/**
 * The real store as the feed sees it: counts the records its read hands the feed's builder, and calls
 * `afterRead` once the read has ended (the table not built yet).
 */
function observed(store: Store, progress: ReadProgress, afterRead: () => Promise<void> = async () => undefined): TableStore {
  return {
    routeSnapshot: async (sink) => {
      progress.records = 0;
      progress.done = false;
      const counting: RouteSink = {
        backend: (r) => (progress.records++, sink.backend(r)),
        assignment: (a) => (progress.records++, sink.assignment(a)),
        policy: (p) => (progress.records++, sink.policy(p)),
        restart: () => sink.restart(),
      };
      const v = await store.routeSnapshot(counting);
      progress.done = true;
      await afterRead();
      return v;
    },
    version: () => store.version(),
    subscribe: (onChange, onResync) => store.subscribe(onChange, onResync),
  };
}

/** Turn by turn of the event loop while a reload runs: what a request would have read, and the reload's progress. */
class Ticker {
  /** The tables current() answered (null included, had it ever been). */
  readonly seen = new Set<RouteTable | null>();
  /** Turns at which `tool` had no route. */
  unrouted = 0;
  /** The most records handed to the builder between two turns. */
  maxRecordsPerTurn = 0;
  /** Turns between the end of the read and the swap: the build's. */
  buildTurns = 0;
  private lastRecords = 0;
  private swapped = false;
  private on = true;

  constructor(private readonly feed: TableFeed, private readonly tool: string, private readonly progress: ReadProgress) {
    feed.once('table', () => (this.swapped = true));
    setImmediate(() => this.tick());
  }

  private tick(): void {
    if (!this.on) return;
    this.seen.add(this.feed.current());
    if (!routed(this.feed, this.tool)) this.unrouted++;
    this.maxRecordsPerTurn = Math.max(this.maxRecordsPerTurn, this.progress.records - this.lastRecords);
    this.lastRecords = this.progress.records;
    if (this.progress.done && !this.swapped) this.buildTurns++;
    setImmediate(() => this.tick());
  }

  stop(): void {
    this.on = false;
  }
}

describe(`a full reload of ${TOOLS.toLocaleString('en-US')} tools from Redis, in slices`, function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let store: RedisStore;
  let feed: TableFeed;

  before(async () => {
    redis = await new RedisServer().start();
    store = await RedisStore.connect({ url: redis.url, keyPrefix: 'slices:', commandTimeoutMs: 10_000 });
    const assignments = Array.from({ length: TOOLS }, (_, i) => ({ tool: `tool-${i}`, host: `127.1.${i >> 8}.${i & 255}`, port: 20000 + (i % 10000), createdAt: 1 }));
    assert.equal((await store.restoreAssignments(assignments)).length, TOOLS);
    await register(store, 'served', 30001);
  });
  after(async () => {
    await store.close();
    await redis.stop();
  });
  afterEach(async () => {
    await feed.stop();
  });

  it('gives the event loop turns while it reads and builds, the old table answering every one of them until the swap', async () => {
    const progress: ReadProgress = { records: 0, done: false };
    feed = new TableFeed(observed(store, progress), { pollMs: 60_000, carryOverMs: 30_000, logger: silentLogger() });
    await feed.start();
    const old = feed.current()!;
    assert.equal(old.assignmentCount, TOOLS + 1);
    const ticker = new Ticker(feed, 'served', progress);
    await feed.requestReload('test');
    ticker.stop();
    const next = feed.current()!;
    assert.notEqual(next, old, 'a new table was swapped in');
    assert.equal(progress.records, TOOLS + 2);
    assert.deepEqual([next.routeCount, next.backendCount, next.assignmentCount], [old.routeCount, old.backendCount, old.assignmentCount]);
    console.log(`      figures: ${JSON.stringify({ records: progress.records, maxRecordsPerTurn: ticker.maxRecordsPerTurn, buildTurns: ticker.buildTurns })}`);
    assert.ok(ticker.maxRecordsPerTurn <= MAX_RECORDS_PER_TURN, `${ticker.maxRecordsPerTurn} records in one turn of the loop`);
    assert.ok(ticker.buildTurns >= MIN_BUILD_TURNS, `the build gave the loop ${ticker.buildTurns} turns`);
    assert.deepEqual([...ticker.seen].filter((t) => t !== old && t !== next), [], 'every turn read the old table or the new one, whole');
    assert.equal(ticker.unrouted, 0, 'the route was there at every turn');
    assert.equal(next.lookup('tool-99999'), old.lookup('tool-99999'), 'an unchanged tool keeps its entry');
  });

  it('applies after the swap a change published while the table was built: nothing lost, no second reload', async () => {
    let armed = false;
    // A registration written once the read is done and the build not yet.
    const writing = observed(store, { records: 0, done: false }, async () => {
      if (!armed) return;
      armed = false;
      await register(store, 'late', 30002);
    });
    feed = new TableFeed(writing, { pollMs: 60_000, carryOverMs: 30_000, logger: silentLogger() });
    await feed.start();
    const reloads = feed.reloads;
    const swapped: RouteTable[] = [];
    feed.on('table', (t: RouteTable) => swapped.push(t));
    armed = true;
    await feed.requestReload('test');
    assert.equal(armed, false, 'the registration was written during the reload');
    await waitFor('the queued change applied', () => routed(feed, 'late'), 10_000, 10);
    assert.equal(swapped[0].lookup('late'), undefined, 'the reload read the table before the registration');
    assert.equal(feed.reloads, reloads + 1, 'applied from the change feed, without another full reload');
    assert.equal(feed.current()!.version, (await store.version()).version);
  });
});
