/**
 * The route table: for every tool, where its requests go (its backends) and which host:port it holds (its
 * assignments). The proxy routes on it, on-demand discovery and the control port read it, and a registry
 * follows one too: its metrics, its durable copy and its port allocation after the store lost its state.
 *
 * Invariants:
 * - A RouteTable is immutable. Nothing changes a table once it is handed out: its maps, its Route objects
 *   and their lists are frozen or never written again. A request reads one table from start to end and
 *   never sees half of an update, without a lock.
 * - A table is replaced whole. The feed (table-feed.ts) builds the next table beside the current one and
 *   swaps the reference; a change event makes a new table that shares every untouched tool with the old
 *   one (same Route objects), so identity comparisons of routes stay meaningful across tables.
 * - Once a first snapshot is loaded, the feed's table is never null again: a failed read keeps the table
 *   it has, because an empty one would drop every route. Before that, RouteSource.current() answers null.
 * - A tool is in the table only while it has a backend or an assignment. A backend whose URL cannot be
 *   routed to is left out, by a build and by a change alike.
 * - Epoch and version are those of the store's history the table was read from; the counts are those of
 *   its entries.
 *
 * What a lookup costs: a request names its tool exactly (the host label or the first path segment, see
 * src/proxy/host.ts), so lookup() is a hash of the name (which of 256 shards) and one Map.get: no
 * patterns, no prefixes, no walk. A tool with at most one backend and one assignment (nearly every tool)
 * is a compact entry whose Route is made on its first lookup and kept; a backend's target is parsed on the
 * first request that goes to it.
 *
 * What building costs: a full build (builder(), fed as the store reads) is one pass over the records, with
 * per-tool indexes only for lists past a few entries; given the table it replaces, a tool whose records
 * match its entry there keeps that entry, so a reload makes objects only for what changed. A change (withChanges) costs the changed tools, a
 * copy of the shards they sit in (1/256 of the tools each) and a 256-slot array; never a rebuild.
 * Walking every tool (tools(), forEachToolCounts()) makes no lasting objects. The index of assignments by
 * host:port (holderOf) is made on its first question, and shared with the next table until an assignment
 * changes (assigned-endpoints.ts).
 *
 * The text form (table-text.ts) writes a table out one line per backend and assignment and reads it back.
 */
import { AssignedEndpoints, changesAssignments } from './assigned-endpoints';
import { PolicySet } from './policy-set';
import type { ChangeEvent, PolicyRecord, RouteAssignment, RouteRecord, TableVersion } from './records';
import type { Route } from './route';
import { EMPTY_SHARD, SHARDS, shardOf, type Shards } from './shards';
import { TableBuilder, type RouteTableBuilder } from './table-builder';
import { applyChanges } from './table-changes';
import { SingleBackendEntry, routeOf, viewOf, type EntryCounts, type ToolEntry } from './tool-entry';

/** Of a tool's backends, those held by self-preservation, by source (forEachToolCounts reuses one object). */
export interface HeldCount {
  registered: number;
  discovered: number;
}

/** What forEachToolCounts hands over for each tool. */
export type ToolCountsVisitor = (tool: string, registered: number, discovered: number, assignments: number, held: Readonly<HeldCount>) => void;

/** Where a proxy reads its routes from. null: no snapshot has been loaded yet. */
export interface RouteSource {
  current(): RouteTable | null;
}

/** One immutable snapshot of every route (the module comment above has its invariants and costs). */
export class RouteTable {
  readonly builtAt = Date.now();
  readonly routeCount: number;
  readonly backendCount: number;
  readonly assignmentCount: number;

  private constructor(
    /** SHARDS maps, never changed once the table is built; EMPTY_SHARD stands for every empty one. */
    private readonly shards: Shards,
    readonly epoch: string,
    readonly version: number,
    counts: EntryCounts,
    /** The operator's policies (bans, tool policies, maintenance): shared with the next table until one changes. */
    readonly policies: PolicySet,
    /** Derived from the assignments alone: made once asked, never changed after. */
    private readonly endpoints = new AssignedEndpoints(),
  ) {
    this.routeCount = counts.routes;
    this.backendCount = counts.backends;
    this.assignmentCount = counts.assignments;
    Object.freeze(this);
  }

  static empty(): RouteTable {
    return new RouteTable(new Array<ReadonlyMap<string, ToolEntry>>(SHARDS).fill(EMPTY_SHARD), '', 0, { routes: 0, backends: 0, assignments: 0 }, PolicySet.EMPTY);
  }

  /** A table from every record at once (a TableSnapshot will do). */
  static fromSnapshot(
    s: TableVersion & { backends: readonly RouteRecord[]; assignments: readonly RouteAssignment[]; policies?: readonly PolicyRecord[] },
  ): RouteTable {
    const b = RouteTable.builder();
    for (const r of s.backends) b.backend(r);
    for (const a of s.assignments) b.assignment(a);
    for (const p of s.policies ?? []) b.policy(p);
    return b.build(s);
  }

  /**
   * A table built from records handed one at a time, e.g. by Store.routeSnapshot as it reads them: each
   * record is garbage once handed over, so a reload of 100,000 routes never holds them all at once.
   * With `previous`, the table being replaced, a tool whose records match its entry there keeps that
   * entry (and the route a lookup made of it) rather than a copy: a reload then makes objects only for
   * what changed.
   */
  static builder(previous?: RouteTable | null): RouteTableBuilder {
    const make = (shards: Shards, counts: EntryCounts, v: TableVersion, policies: PolicySet) => new RouteTable(shards, v.epoch, v.version, counts, policies);
    return new TableBuilder(make, previous ? previous.shards : null);
  }

  /** A new table with the events applied in order; epoch and version are those of the last event. */
  withChanges(events: readonly ChangeEvent[]): RouteTable {
    if (events.length === 0) return this;
    const counts: EntryCounts = { routes: this.routeCount, backends: this.backendCount, assignments: this.assignmentCount };
    const next = applyChanges(this.shards, counts, events);
    const last = events[events.length - 1];
    const policies = this.policies.withChanges(events);
    return new RouteTable(next.shards, last.epoch, last.version, next.counts, policies, changesAssignments(events) ? undefined : this.endpoints);
  }

  lookup(tool: string): Route | undefined {
    const e = this.shards[shardOf(tool)].get(tool);
    return e === undefined ? undefined : routeOf(e);
  }

  /**
   * The tool that holds `host`:`port` by an assignment (the host in any spelling; an address, as the
   * registry keys them), or undefined when none does.
   */
  holderOf(host: string, port: number): string | undefined {
    return this.endpoints.holder(this.shards, host, port);
  }

  /**
   * Each tool's backends by source (held ones included, and counted apart) and its assignments, counted
   * without making route objects: the metrics' pass over every new table (tools() would make ~500,000
   * objects at 100,000 tools). Tools come in no particular order. `from`..`to` (shard numbers, 0..SHARDS)
   * walks part of the table: a walk cut into pieces visits every tool once.
   */
  forEachToolCounts(each: ToolCountsVisitor, from = 0, to = SHARDS): void {
    const held = { registered: 0, discovered: 0 };
    for (let i = from; i < to; i++) {
      for (const e of this.shards[i].values()) {
        held.registered = 0;
        held.discovered = 0;
        if (e instanceof SingleBackendEntry) {
          const discovered = e.id !== null && e.source === 'discovered' ? 1 : 0;
          if (e.id !== null && e.held) held[e.source === 'discovered' ? 'discovered' : 'registered'] = 1;
          each(e.tool, e.backendCount - discovered, discovered, e.assignmentCount, held);
          continue;
        }
        let discovered = 0;
        for (const b of e.backends) {
          if (b.source === 'discovered') discovered++;
          if (b.held) held[b.source === 'discovered' ? 'discovered' : 'registered']++;
        }
        each(e.tool, e.backends.length - discovered, discovered, e.assignments.length, held);
      }
    }
  }

  /** Every tool's route, in no particular order; one not looked up yet is made for the walk and not kept. */
  *tools(): IterableIterator<Route> {
    for (const shard of this.shards) for (const e of shard.values()) yield viewOf(e);
  }
}
