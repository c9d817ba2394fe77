import { EventEmitter } from 'node:events';
import type { Logger } from '../logger';
import { LostTools } from './lost-tools';
import { policyKey } from './policy-records';
import type { PolicySet } from './policy-set';
import type { ChangeEvent, RouteAssignment, RouteRecord, RouteSink, TableVersion } from './records';
import { RouteTable, type RouteSource } from './route-table';
import { Slices } from './slices';
import type { RouteTableBuilder } from './table-builder';

/**
 * What the feed reads from the store: a snapshot handed over record by record, the current version, and
 * the change feed. The registry's Store is one; declared here so the table needs nothing of the registry.
 */
export interface TableStore {
  /** Hands every route record to `sink` and answers the version they make up. */
  routeSnapshot(sink: RouteSink): Promise<TableVersion>;
  version(): Promise<TableVersion>;
  /**
   * Calls `onChange` for each change event published from now on, `onResync` when events may have been
   * missed (a reconnected subscription); answers the unsubscribe.
   */
  subscribe(onChange: (event: ChangeEvent) => void, onResync: () => void): Promise<() => Promise<void>>;
}

export interface TableFeedOptions {
  /** How often the store's version is compared with ours: catches a lost last message. */
  pollMs: number;
  /**
   * After the store lost its state (new epoch), routes of the old table are kept this long beside the
   * new ones, so heartbeats can rebuild the table without a live route vanishing in between.
   */
  carryOverMs: number;
  logger: Logger;
}

/** Entries a full reload settles and counts in one turn of the event loop: about this many, or one shard. */
const ENTRIES_PER_TURN = 2000;

interface CarryOver {
  backends: RouteRecord[];
  /** Not routed on: the registry reserves these ports for their old tools (src/registry/recovery.ts). */
  assignments: RouteAssignment[];
  /** The operator's policies of the lost table: bans must not lapse while the registry writes them back. */
  policies: PolicySet;
  until: number;
}

/**
 * Keeps a proxy's RouteTable current: a full snapshot, then the change feed applied in version order.
 * Any doubt (a version gap, a new epoch, a reconnected subscription, the store coming back) means a full
 * reload; a failed reload keeps the table we have, because an empty table drops every route.
 */
export class TableFeed extends EventEmitter implements RouteSource {
  private table: RouteTable | null = null;
  private pending: ChangeEvent[] = [];
  private loading: Promise<void> | null = null;
  private reloadAgain = false;
  private flushScheduled = false;
  private pollTimer: NodeJS.Timeout | null = null;
  /** The store's version a poll found ahead of the table, and when: a message on its way, or lost. */
  private behind: { since: number; epoch: string; version: number } | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private carry: CarryOver | null = null;
  private readonly lost = new LostTools();
  private stopped = false;
  storeUp = false;
  private storeKnown = false;
  /** Counts, for metrics and tests. */
  reloads = 0;
  gaps = 0;
  /** When the table was last confirmed current against the store. */
  confirmedAt = 0;

  constructor(private readonly store: TableStore, private readonly opts: TableFeedOptions) {
    super();
  }

  current(): RouteTable | null {
    return this.table;
  }

  /** The assignments of the table before the store lost its state, while the carry-over lasts. */
  carriedAssignments(): readonly RouteAssignment[] {
    const carry = this.carry;
    return carry && Date.now() < carry.until ? carry.assignments : [];
  }

  /**
   * Tools the store lost without a deregistration or a port release, by name: from the loss until the store
   * has the tool again (the backends carried over meanwhile do not count as having it).
   */
  lostTools(): readonly string[] {
    return this.lost.names();
  }

  /** Resolves once a first snapshot is loaded, or after the first failure (the feed keeps trying). */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      // Subscribe before the first read, so no change between the read and the subscription is missed.
      this.unsubscribe = await this.store.subscribe(
        (ev) => this.onEvent(ev),
        () => this.requestReload('resubscribed'),
      );
    } catch (err) {
      this.opts.logger.warn({ event: 'feed.subscribe_failed', err: (err as Error).message }, 'change feed subscription failed; polling until it works');
    }
    await this.requestReload('start');
    this.schedulePoll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.unsubscribe) await this.unsubscribe().catch(() => undefined);
    this.unsubscribe = null;
    if (this.loading) await this.loading.catch(() => undefined);
  }

  private onEvent(ev: ChangeEvent): void {
    if (this.stopped) return;
    this.pending.push(ev);
    if (this.loading || this.flushScheduled) return;
    this.flushScheduled = true;
    // Events arriving in the same turn are applied as one batch: one new table, one swap.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Applies pending events that follow our version without a gap; anything else triggers a reload. */
  private flush(): void {
    const table = this.table;
    if (!table || this.loading) return;
    const events = this.pending.sort((a, b) => a.version - b.version);
    this.pending = [];
    const apply: ChangeEvent[] = [];
    let version = table.version;
    for (const ev of events) {
      if (ev.epoch !== table.epoch) {
        this.requestReload('new epoch');
        return;
      }
      if (ev.version <= version) continue;
      if (ev.version !== version + 1) {
        this.gaps++;
        this.requestReload(`gap: have ${version}, got ${ev.version}`);
        return;
      }
      apply.push(ev);
      version = ev.version;
    }
    if (apply.length) {
      this.lost.applyChanges(apply);
      this.swap(table.withChanges(apply));
    }
  }

  private swap(next: RouteTable): void {
    this.table = next;
    this.confirmedAt = Date.now();
    this.emit('table', next);
  }

  /** Coalesces reload requests: at most one read in flight and one queued behind it. */
  requestReload(reason: string): Promise<void> {
    if (this.loading) {
      this.reloadAgain = true;
      return this.loading;
    }
    this.loading = this.reload(reason).finally(() => {
      this.loading = null;
      if (this.reloadAgain && !this.stopped) {
        this.reloadAgain = false;
        void this.requestReload('queued');
      } else {
        this.flush();
      }
    });
    return this.loading;
  }

  private async reload(reason: string): Promise<void> {
    // Built as the store reads: the records themselves are never all held at once (bench/proxy.ts). From
    // the table we serve, so the tools that did not change keep their entries.
    const started = Date.now();
    const builder = RouteTable.builder(this.table);
    let snap: TableVersion;
    try {
      snap = await this.store.routeSnapshot(builder);
    } catch (err) {
      this.markStore(false, err);
      return;
    }
    this.markStore(true);
    const old = this.table;
    // A new epoch: the store restarted empty. The same epoch at a lower version: it lost its latest
    // writes (a failover to a replica that had not received them). Either way heartbeats restore what
    // is missing within one TTL; until then the routes it lost are kept. A loss while an earlier carry-over
    // still runs starts a new one from the table we serve: the routes still carried and those registered
    // since, which this loss took from the store as well.
    const lost = old && old.epoch ? (snap.epoch !== old.epoch ? 'epoch' : snap.version < old.version ? 'writes' : null) : null;
    if (old && lost) {
      // The tools of the table we serve, carried ones included: a second loss within the carry-over keeps
      // the first loss's tools lost (and those registered since are lost as well).
      this.lost.addTable(old);
      const assignments = [...allAssignments(old), ...this.carriedAssignments()];
      // The served table's policies include those still carried from an earlier loss.
      this.carry = { backends: [...allBackends(old)], assignments, policies: old.policies, until: Date.now() + this.opts.carryOverMs };
    }
    // Before the carry-over is added: only what the store itself holds brings a lost tool back.
    this.lost.dropPresent((tool) => builder.hasTool(tool));
    if (old && lost && this.carry) {
      const counts = { carried: this.carry.backends.length, lostTools: this.lost.size };
      this.opts.logger.warn(
        lost === 'epoch'
          ? { event: 'feed.new_epoch', from: old.epoch, to: snap.epoch, ...counts }
          : { event: 'feed.version_back', from: old.version, to: snap.version, ...counts },
        lost === 'epoch'
          ? 'the store lost its state; keeping the last known routes while heartbeats rebuild it'
          : 'the store lost its latest writes (failover?); keeping the last known routes while heartbeats restore them',
      );
      // The registry writes its copy back on this (src/registry/restorer.ts); the carry-over holds the routes meanwhile.
      this.emit('state-lost', { kind: lost });
    }
    this.reloads++;
    this.addCarryOver(builder);
    // In slices too, the table we serve answering meanwhile; events arriving wait in `pending` (a reload
    // holds flush() back) and are applied after the swap.
    const slices = new Slices(ENTRIES_PER_TURN);
    const table = await builder.buildInSlices(snap, slices);
    const ms = Date.now() - started;
    this.opts.logger.info({ event: 'feed.reload', reason, version: snap.version, backends: table.backendCount, ms }, 'route table reloaded');
    this.pending = this.pending.filter((ev) => ev.epoch === snap.epoch && ev.version > snap.version);
    this.swap(table);
  }

  /** The carried routes the store does not have (by tool and id, or by tool and url), and the carried policies it lacks (by key). */
  private addCarryOver(builder: RouteTableBuilder): void {
    const carry = this.carry;
    if (!carry) return;
    if (Date.now() >= carry.until) {
      this.carry = null;
      return;
    }
    const extra = carry.backends.filter((b) => !builder.hasBackend(b.tool, b.id, b.url));
    for (const b of extra) builder.backend(b);
    for (const p of carry.policies.records.values()) if (!builder.hasPolicy(policyKey(p))) builder.policy(p);
  }

  private markStore(up: boolean, err?: unknown): void {
    if (up === this.storeUp && this.storeKnown) return;
    const first = !this.storeKnown;
    this.storeKnown = true;
    this.storeUp = up;
    if (up && first) return;
    if (up) this.opts.logger.info({ event: 'store.restored' }, 'store reachable again; route table resynchronised');
    else this.opts.logger.warn({ event: 'store.lost', err: (err as Error | undefined)?.message }, 'store unreachable; serving the last known route table');
    this.emit(up ? 'store-up' : 'store-down');
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => void this.poll().finally(() => this.schedulePoll()), this.opts.pollMs);
    this.pollTimer.unref();
  }

  /** Detects what messages cannot: the last message lost, a silent reconnect, an expired carry-over. */
  private async poll(): Promise<void> {
    let v;
    try {
      v = await this.store.version();
    } catch (err) {
      this.markStore(false, err);
      return;
    }
    const wasDown = !this.storeUp;
    this.markStore(true);
    const table = this.table;
    if (wasDown || !table || (this.carry && Date.now() >= this.carry.until)) {
      await this.requestReload(wasDown ? 'store back' : !table ? 'no table yet' : 'carry-over ended');
      return;
    }
    if (v.epoch === table.epoch && v.version < table.version) {
      // Versions only grow: a store behind us lost writes we applied (a failover to a replica that had
      // not received them yet). Its table is the truth now; events numbered from its version would
      // otherwise be taken for ones we already have.
      this.gaps++;
      await this.requestReload(`store went back: have ${table.version}, store ${v.version}`);
      return;
    }
    if (v.epoch !== table.epoch || v.version > table.version) {
      // A message may still be on its way; only a version the table has not reached a poll later is a
      // lost message. Under constant churn every poll may find the store one message ahead: each time of
      // a newer version, which arrives too. Reloading on "ahead twice in a row" cost needless full reloads
      // (a second and more at 100,000 routes: bench:proxy saw a registration take 1.5 s to be routed).
      const b = this.behind;
      const caughtUp = b !== null && table.epoch === b.epoch && table.version >= b.version;
      if (b && !caughtUp && Date.now() - b.since >= this.opts.pollMs) {
        this.behind = null;
        this.gaps++;
        await this.requestReload(`behind the store: have ${table.epoch}/${table.version}, store ${v.epoch}/${v.version}`);
      } else if (!b || caughtUp) {
        this.behind = { since: Date.now(), epoch: v.epoch, version: v.version };
      }
      return;
    }
    this.behind = null;
    this.confirmedAt = Date.now();
  }
}

function* allBackends(table: RouteTable): Generator<RouteRecord> {
  for (const route of table.tools()) {
    for (const b of route.backends) {
      const r: RouteRecord = { tool: route.tool, id: b.id, url: b.url, source: b.source };
      if (b.held) r.held = true;
      if (b.prefix !== null) r.prefix = b.prefix;
      yield r;
    }
  }
}

function* allAssignments(table: RouteTable): Generator<RouteAssignment> {
  for (const route of table.tools()) yield* route.assignments;
}
