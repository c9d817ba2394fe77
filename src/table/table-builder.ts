import { isRoutable } from './backend-target';
import { policyKey } from './policy-records';
import { PolicySet } from './policy-set';
import type { PolicyRecord, RouteAssignment, RouteRecord, RouteSink, TableVersion } from './records';
import { NO_ASSIGNMENTS, NO_BACKENDS, freezeAssignment } from './route';
import { TableBackend, sourceLiteral, type RouteBackend } from './route-backend';
import type { RouteTable } from './route-table';
import { EMPTY_SHARD, SHARDS, shardOf, type Shards } from './shards';
import type { Slices } from './slices';
import { SingleBackendEntry, countInto, type EntryCounts, type ToolEntry } from './tool-entry';

/** Builds a RouteTable from a store's records as they are read (RouteTable.builder()). */
export interface RouteTableBuilder extends RouteSink {
  /** Any assignment will do: the table keeps no creation time. */
  assignment(a: RouteAssignment): void;
  /** Whether a backend of `tool` with this id or this url was received. */
  hasBackend(tool: string, id: string, url: string): boolean;
  /** Whether any backend or assignment of `tool` was received. */
  hasTool(tool: string): boolean;
  /** Whether a policy with this key (policyKey) was received. */
  hasPolicy(key: string): boolean;
  /** The table of what was received; the builder is empty again afterwards. */
  build(v: TableVersion): RouteTable;
  /** build(), giving the event loop a turn each time `slices` is full of entries walked. */
  buildInSlices(v: TableVersion, slices: Slices): Promise<RouteTable>;
}

/** Makes the table of the shards built (the table's constructor is its own). */
export type MakeTable = (shards: Shards, counts: EntryCounts, v: TableVersion, policies: PolicySet) => RouteTable;

/**
 * While a snapshot is read, a tool with more than one backend or assignment (the others stay
 * SingleBackendEntry). It holds each tool/id and host:port once; duplicates are still handled, and a tool
 * with thousands of backends must not cost a findIndex per insert, so an index is built only for lists
 * past a few entries. build() freezes it, lists trimmed, and the same object is the tool's Route.
 */
interface MutableRoute {
  /** The first record's string of the name: the map key, the route's and its assignments' name. */
  tool: string;
  /** NO_BACKENDS while it has none (a tool with two assignments and no backend); NO_ASSIGNMENTS likewise. */
  backends: RouteBackend[];
  assignments: RouteAssignment[];
}

/** Lookups by id and by host:port, built only for the lists of a tool past a few entries. */
interface ListIndex {
  ids: Map<string, number> | null;
  keys: Map<string, number> | null;
}

type BuildingShard = Map<string, SingleBackendEntry | MutableRoute>;

/** Lists shorter than this are searched by a scan; longer ones get a ListIndex. */
const SCAN = 8;
/** Distinct host strings a table build shares among assignments, at most. */
const SHARED_HOSTS = 4096;

/** Of an entry taken over from the previous table, the parts the records confirmed so far. */
const BACKEND_SEEN = 1;
const ASSIGNMENT_SEEN = 2;
/** takeOver's answer when the record only confirmed an entry taken over from the previous table. */
const TAKEN = Symbol('taken over');

/**
 * A tool's first record makes its SingleBackendEntry, the very object the table keeps; a second backend
 * or assignment turns it into a MutableRoute that build() freezes into its Route. One small map per shard
 * rather than one of every tool.
 */
export class TableBuilder implements RouteTableBuilder {
  private shards = buildingShards();
  private indexes = new Map<MutableRoute, ListIndex>();
  // One string per host for the whole table: a platform runs many tools on each of a few hosts. Capped:
  // with a host per tool, a map of every host would be garbage the size of the table's strings, promoted
  // during the load (bench/proxy.ts puts 100,000 tools on 100,000 addresses).
  private hosts = new Map<string, string>();
  /**
   * Entries of the previous table taken over as they are, by tool: the parts (BACKEND_SEEN,
   * ASSIGNMENT_SEEN) the records confirmed so far. A reload finds nearly every tool as it was; the old
   * entry then serves in the new table, rather than a copy of it made from the records. At 100,000
   * tools those copies (an entry and its strings each) were what survived the young generation during a
   * reload, and the old table the garbage of the next full collection: the reload's longest pauses
   * (bench/reload-tail.ts). A taken-over entry is never changed: a record that differs from it, or a
   * part no record confirmed by the end of the read, turns it into a copy of the confirmed parts.
   */
  private borrowed = new Map<string, number>();
  private policies = new Map<string, PolicyRecord>();

  constructor(
    private readonly make: MakeTable,
    /** The shards of the table this build replaces (RouteTable.builder(previous)): the same hash places a tool in both. */
    private readonly previous: Shards | null = null,
  ) {}

  backend(r: RouteRecord): void {
    const i = shardOf(r.tool);
    // The URL of a taken-over entry was checked when it was made.
    const e = this.takeOver(i, r.tool, BACKEND_SEEN, (x) => sameBackend(x, r));
    if (e === TAKEN) return;
    // A URL the proxy cannot parse routes nowhere; the rest of the table must still load.
    if (!isRoutable(r.url)) return;
    const shard = this.shards[i];
    // A sub-route's backend keeps its prefix on a route with lists: the compact entry holds none.
    const prefix = r.prefix ?? null;
    if (e === undefined && prefix === null) {
      shard.set(r.tool, new SingleBackendEntry(r.tool, r.id, r.url, sourceLiteral(r.source), r.held === true, null, 0));
      return;
    }
    let m: MutableRoute;
    if (e === undefined) {
      shard.set(r.tool, (m = { tool: r.tool, backends: NO_BACKENDS as RouteBackend[], assignments: NO_ASSIGNMENTS as RouteAssignment[] }));
    } else if (e instanceof SingleBackendEntry) {
      if (prefix === null && (e.id === null || e.id === r.id)) {
        e.id = r.id;
        e.url = r.url;
        e.source = sourceLiteral(r.source);
        e.held = r.held === true;
        return;
      }
      shard.set(e.tool, (m = mutableRouteOf(e)));
    } else {
      m = e;
    }
    addBackend(m, new TableBackend(r.id, r.url, sourceLiteral(r.source), r.held === true, prefix), this.indexes);
  }

  assignment(a: RouteAssignment): void {
    const i = shardOf(a.tool);
    const e = this.takeOver(i, a.tool, ASSIGNMENT_SEEN, (x) => sameAssignment(x, a));
    if (e === TAKEN) return;
    const shard = this.shards[i];
    if (e === undefined) {
      shard.set(a.tool, new SingleBackendEntry(a.tool, null, '', 'registered', false, this.sharedHost(a.host), a.port));
      return;
    }
    let m: MutableRoute;
    if (e instanceof SingleBackendEntry) {
      if (e.host === null || (e.host === a.host && e.port === a.port)) {
        e.host = this.sharedHost(a.host);
        e.port = a.port;
        return;
      }
      shard.set(e.tool, (m = mutableRouteOf(e)));
    } else {
      m = e;
    }
    addAssignment(m, freezeAssignment(a, m.tool, this.sharedHost(a.host)), this.indexes);
  }

  restart(): void {
    this.reset();
  }

  hasBackend(tool: string, id: string, url: string): boolean {
    const e = this.shards[shardOf(tool)].get(tool);
    if (e instanceof SingleBackendEntry) return e.id !== null && this.confirmed(e, BACKEND_SEEN) && (e.id === id || e.url === url);
    return !!e && e.backends.some((b) => b.id === id || b.url === url);
  }

  hasTool(tool: string): boolean {
    return this.shards[shardOf(tool)].has(tool);
  }

  policy(record: PolicyRecord): void {
    this.policies.set(policyKey(record), record);
  }

  hasPolicy(key: string): boolean {
    return this.policies.has(key);
  }

  build(v: TableVersion): RouteTable {
    const counts: EntryCounts = { routes: 0, backends: 0, assignments: 0 };
    const done = this.shards.map((shard) => this.finish(shard, counts));
    const policies = PolicySet.of(this.policies.values());
    this.reset();
    return this.make(done, counts, v, policies);
  }

  async buildInSlices(v: TableVersion, slices: Slices): Promise<RouteTable> {
    const counts: EntryCounts = { routes: 0, backends: 0, assignments: 0 };
    const done: ReadonlyMap<string, ToolEntry>[] = [];
    for (const shard of this.shards) {
      done.push(this.finish(shard, counts));
      if (slices.count(shard.size)) await slices.turn();
    }
    const policies = PolicySet.of(this.policies.values());
    this.reset();
    return this.make(done, counts, v, policies);
  }

  /** A shard as the table keeps it: lists frozen, entries taken over settled, every entry counted. */
  private finish(shard: BuildingShard, counts: EntryCounts): ReadonlyMap<string, ToolEntry> {
    if (shard.size === 0) return EMPTY_SHARD;
    for (let e of shard.values()) {
      if (!(e instanceof SingleBackendEntry)) freezeMutableRoute(e);
      else if (this.borrowed.size > 0) e = this.settled(shard, e);
      countInto(counts, e, 1);
    }
    return shard;
  }

  /**
   * A record's `part` of `tool` (in shard `i`), against what the build holds so far: TAKEN when the record only confirms
   * an entry of the previous table, which then serves as it is (taken over now, or before). Else the
   * entry to change as the record says (a taken-over one copied first), or undefined when there is none.
   */
  private takeOver(i: number, tool: string, part: number, same: (e: SingleBackendEntry) => boolean): SingleBackendEntry | MutableRoute | undefined | typeof TAKEN {
    const shard = this.shards[i];
    const e = shard.get(tool);
    if (e === undefined) {
      const old = this.previous?.[i].get(tool);
      if (!(old instanceof SingleBackendEntry) || !same(old)) return undefined;
      // Keyed by the old entry's own name: the record's copy of the string is garbage a moment later.
      shard.set(old.tool, old);
      this.borrowed.set(old.tool, part);
      return TAKEN;
    }
    const seen = this.borrowed.get(tool);
    if (seen === undefined) return e;
    const own = e as SingleBackendEntry;
    if (!same(own)) return this.unborrow(shard, own, seen);
    this.borrowed.set(own.tool, seen | part);
    return TAKEN;
  }

  /** A taken-over entry's parts no record confirmed are not in the store: it is copied without them. */
  private settled(shard: BuildingShard, e: SingleBackendEntry): SingleBackendEntry {
    const seen = this.borrowed.get(e.tool);
    if (seen === undefined) return e;
    const parts = (e.id !== null ? BACKEND_SEEN : 0) | (e.host !== null ? ASSIGNMENT_SEEN : 0);
    return (parts & ~seen) === 0 ? e : this.unborrow(shard, e, seen);
  }

  /** The builder's own copy of a taken-over entry, with only the parts the records confirmed. */
  private unborrow(shard: BuildingShard, e: SingleBackendEntry, seen: number): SingleBackendEntry {
    const b = (seen & BACKEND_SEEN) !== 0;
    const a = (seen & ASSIGNMENT_SEEN) !== 0;
    const own = new SingleBackendEntry(e.tool, b ? e.id : null, b ? e.url : '', b ? e.source : 'registered', b && e.held, a ? e.host : null, a ? e.port : 0);
    shard.set(e.tool, own);
    this.borrowed.delete(e.tool);
    return own;
  }

  private confirmed(e: SingleBackendEntry, part: number): boolean {
    const seen = this.borrowed.get(e.tool);
    return seen === undefined || (seen & part) !== 0;
  }

  private sharedHost(host: string): string {
    const held = this.hosts.get(host);
    if (held !== undefined) return held;
    if (this.hosts.size < SHARED_HOSTS) this.hosts.set(host, host);
    return host;
  }

  private reset(): void {
    this.shards = buildingShards();
    this.indexes = new Map();
    this.hosts = new Map();
    this.borrowed = new Map();
    this.policies = new Map();
  }
}

/** A compact entry holds no sub-route prefix: a record with one is never the same as it. */
function sameBackend(e: SingleBackendEntry, r: RouteRecord): boolean {
  return (r.prefix ?? null) === null && e.id === r.id && e.url === r.url && e.source === r.source && e.held === (r.held === true);
}

function sameAssignment(e: SingleBackendEntry, a: RouteAssignment): boolean {
  return e.host === a.host && e.port === a.port;
}

function buildingShards(): BuildingShard[] {
  return Array.from({ length: SHARDS }, (): BuildingShard => new Map());
}

/** The same tool as a route with lists, for its second backend or assignment. */
function mutableRouteOf(e: SingleBackendEntry): MutableRoute {
  const r = e.view();
  // An empty list stays the shared frozen one: the first add replaces it rather than pushing to it.
  const backends = r.backends.length === 0 ? (NO_BACKENDS as RouteBackend[]) : r.backends.slice();
  const assignments = r.assignments.length === 0 ? (NO_ASSIGNMENTS as RouteAssignment[]) : r.assignments.slice();
  return { tool: e.tool, backends, assignments };
}

/** The route as the table keeps it: frozen, its lists frozen at their exact length. */
function freezeMutableRoute(m: MutableRoute): void {
  if (m.backends.length > 0) m.backends = Object.freeze(withoutSpareSlots(m.backends)) as RouteBackend[];
  if (m.assignments.length > 0) m.assignments = Object.freeze(withoutSpareSlots(m.assignments)) as RouteAssignment[];
  Object.freeze(m);
}

/**
 * An array of exactly its length: one grown by push keeps spare slots, which were most of a route's
 * memory at 100,000 tools (bench/proxy.ts). A list of one was made as a literal or by map(), exact already.
 */
function withoutSpareSlots<T>(list: T[]): T[] {
  return list.length <= 1 ? list : list.slice();
}

function indexOf(indexes: Map<MutableRoute, ListIndex>, m: MutableRoute): ListIndex {
  let x = indexes.get(m);
  if (!x) indexes.set(m, (x = { ids: null, keys: null }));
  return x;
}

function addBackend(m: MutableRoute, rb: RouteBackend, indexes: Map<MutableRoute, ListIndex>): void {
  const list = m.backends;
  if (list.length === 0) {
    m.backends = [rb];
    return;
  }
  const x = list.length >= SCAN ? indexOf(indexes, m) : null;
  if (x && !x.ids) x.ids = new Map(list.map((b, i) => [b.id, i]));
  const i = x?.ids ? x.ids.get(rb.id) ?? -1 : list.findIndex((b) => b.id === rb.id);
  if (i >= 0) {
    list[i] = rb;
    return;
  }
  list.push(rb);
  x?.ids?.set(rb.id, list.length - 1);
}

function addAssignment(m: MutableRoute, a: RouteAssignment, indexes: Map<MutableRoute, ListIndex>): void {
  const list = m.assignments;
  if (list.length === 0) {
    m.assignments = [a];
    return;
  }
  const x = list.length >= SCAN ? indexOf(indexes, m) : null;
  if (x && !x.keys) x.keys = new Map(list.map((y, i) => [`${y.host}:${y.port}`, i]));
  const i = x?.keys ? x.keys.get(`${a.host}:${a.port}`) ?? -1 : list.findIndex((y) => y.host === a.host && y.port === a.port);
  if (i >= 0) {
    list[i] = a;
    return;
  }
  list.push(a);
  x?.keys?.set(`${a.host}:${a.port}`, list.length - 1);
}
