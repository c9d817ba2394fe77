import type { Backend, BackendSource, ChangeEvent, RouteAssignment, RouteRecord, RouteSink, TableVersion } from '../registry/types';

export type { RouteAssignment };

/**
 * Where a backend is reached, parsed once per backend. http-proxy re-parses a target given as a string
 * on every request (a measurable share of its cost per request); this object is handed to it as is. The fields are those of a parsed URL
 * that an HTTP client connects with, so another engine can use it just as well. (No `host`: Node's client
 * connects to `hostname` and overwrites `host` with it.)
 */
export interface BackendTarget {
  readonly protocol: 'http:' | 'https:';
  /** Name or address to connect to; an IPv6 address without brackets. */
  readonly hostname: string;
  readonly port: number;
  /** scheme://host:port, brackets around an IPv6 address: the key of undici's connection pools. */
  readonly origin: string;
}

export interface RouteBackend {
  readonly id: string;
  readonly url: string;
  readonly source: BackendSource;
  /**
   * Its lease lapsed and self-preservation keeps it (Backend.held): most likely dead. Not a live route;
   * tried after the live backends, and its refusal means the tool is not running rather than broken.
   */
  readonly held: boolean;
  readonly target: BackendTarget;
}

/** Of a tool's backends, those held by self-preservation, by source (RouteTable.tally reuses one object). */
export interface HeldCount {
  registered: number;
  discovered: number;
}

export interface ToolRoute {
  readonly tool: string;
  readonly backends: readonly RouteBackend[];
  readonly assignments: readonly RouteAssignment[];
}

/** Builds a RouteTable from a store's records as they are read (RouteTable.builder()). */
export interface RouteTableBuilder extends RouteSink {
  /** Any assignment will do: the table keeps no creation time. */
  assignment(a: RouteAssignment): void;
  /** Whether a backend of `tool` with this id or this url was received. */
  hasBackend(tool: string, id: string, url: string): boolean;
  /** Whether any backend or assignment of `tool` was received. */
  hasTool(tool: string): boolean;
  /** The table of what was received; the builder is empty again afterwards. */
  build(v: TableVersion): RouteTable;
}

/** Where a proxy reads its routes from. null: no snapshot has been loaded yet. */
export interface RouteSource {
  current(): RouteTable | null;
}

// The shape nearly every registered URL has: scheme, a dotted-quad address or a lower-case name, a port.
// Parsed by hand, 100,000 of them cost a fraction of what WHATWG URL objects do; anything else (IPv6,
// defaults, paths, odd spellings a URL parser would normalise) goes through URL.
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const PLAIN = new RegExp(
  `^(https?)://((?:${OCTET}\\.){3}${OCTET}|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?):([1-9]\\d{0,4})/?$`,
);

/** The parsed target of an http(s) URL, or null when the URL cannot be routed to. */
export function parseTarget(url: string): BackendTarget | null {
  const m = PLAIN.exec(url);
  if (m) {
    const port = Number(m[3]);
    const protocol = m[1] === 'https' ? 'https:' : 'http:';
    const defaultPort = protocol === 'https:' ? 443 : 80;
    if (port <= 65535 && port !== defaultPort) return makeTarget(protocol, m[2], port);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) return null;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return makeTarget(u.protocol, hostname, port);
}

/** Whether parseTarget would answer a target, without making one where the fast path decides. */
function isRoutable(url: string): boolean {
  const m = PLAIN.exec(url);
  return (m !== null && Number(m[3]) <= 65535) || parseTarget(url) !== null;
}

function makeTarget(protocol: 'http:' | 'https:', hostname: string, port: number): BackendTarget {
  const origin = `${protocol}//${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
  return Object.freeze({ protocol, hostname, port, origin });
}

/**
 * A table's backend. Its target is parsed on the first request that goes to it, not when the table is
 * built: of 100,000 tools few get traffic, and a parsed target (an object, its hostname and host:port
 * strings) was ~110 of ~530 bytes a route (heap after a full reload of bench/proxy.ts's table). The URL
 * was checked when the backend was made, so the parse cannot fail. Immutable from outside; the private
 * cache is derived from `url` and never changes once set (private fields are not properties: freeze
 * leaves them).
 */
class TableBackend implements RouteBackend {
  #target: BackendTarget | null = null;

  constructor(
    readonly id: string,
    readonly url: string,
    readonly source: BackendSource,
    readonly held: boolean,
  ) {
    Object.freeze(this);
  }

  get target(): BackendTarget {
    return (this.#target ??= parseTarget(this.url)!);
  }
}

/**
 * A RouteBackend from a backend record, or null when its URL is not routable. Exported for code that
 * finds a backend outside the table (fallback discovery) and wants to hand it to the proxy.
 */
export function createRouteBackend(b: Pick<Backend, 'id' | 'url' | 'source' | 'held'>): RouteBackend | null {
  if (!isRoutable(b.url)) return null;
  return new TableBackend(b.id, b.url, sourceLiteral(b.source), b.held === true);
}

/** The constant string rather than the copy each parsed record carries: one less string per backend. */
function sourceLiteral(s: BackendSource): BackendSource {
  return s === 'registered' ? 'registered' : s === 'discovered' ? 'discovered' : s;
}

/**
 * `tool`, `host`: strings the table holds already, shared rather than the record's copies of them. The
 * creation time is left out: nothing on the proxy side reads it, and it was a boxed number per route.
 */
function freezeAssignment(a: RouteAssignment, tool = a.tool, host = a.host): RouteAssignment {
  return Object.freeze({ tool, host, port: a.port });
}

const NO_BACKENDS: readonly RouteBackend[] = Object.freeze([]);
const NO_ASSIGNMENTS: readonly RouteAssignment[] = Object.freeze([]);

/**
 * Exact-length arrays: one grown by push keeps spare slots, which were most of a route's memory at
 * 100,000 tools (bench/proxy.ts). A list of one was made as a literal or by map(), exact already.
 */
function exact<T>(list: T[]): T[] {
  return list.length <= 1 ? list : list.slice();
}

function freezeRoute(tool: string, backends: RouteBackend[], assignments: RouteAssignment[]): ToolRoute {
  return Object.freeze({
    tool,
    backends: backends.length === 0 ? NO_BACKENDS : Object.freeze(backends),
    assignments: assignments.length === 0 ? NO_ASSIGNMENTS : Object.freeze(assignments),
  });
}

/**
 * The table's entry for a tool with at most one backend and at most one assignment, which is nearly every
 * tool. It holds the record's fields and makes the ToolRoute (a backend, an assignment, two one-element
 * arrays and the route object: ~180 of ~410 bytes a route at 100,000 tools, bench/proxy.ts) on the
 * first lookup, and keeps it: of 100,000 tools few get traffic. Fewer objects also make a full reload
 * cheaper. Only the builder and withChanges of this module set the fields, before the table is handed
 * out; the kept route is derived from them and never changes once made.
 */
class SoleRoute {
  #route: ToolRoute | null = null;

  constructor(
    readonly tool: string,
    /** null: no backend (the tool holds a port and is not running). */
    public id: string | null,
    public url: string,
    public source: BackendSource,
    /** The backend's Backend.held mark. */
    public held: boolean,
    /** null: no assignment. */
    public host: string | null,
    public port: number,
  ) {}

  get backendCount(): number {
    return this.id === null ? 0 : 1;
  }

  get liveBackendCount(): number {
    return this.id === null || this.held ? 0 : 1;
  }

  get assignmentCount(): number {
    return this.host === null ? 0 : 1;
  }

  /** The route the proxy routes on: made once, then the same object for every request. */
  route(): ToolRoute {
    return (this.#route ??= this.view());
  }

  /** The route without keeping it: a walk over the whole table (metrics, status) must not grow it. */
  view(): ToolRoute {
    return (
      this.#route ??
      freezeRoute(
        this.tool,
        this.id === null ? [] : [new TableBackend(this.id, this.url, this.source, this.held)],
        this.host === null ? [] : [Object.freeze({ tool: this.tool, host: this.host, port: this.port })],
      )
    );
  }

  /** The same tool as a draft of a route with lists, for a second backend or assignment. */
  toDraft(): RouteDraft {
    const r = this.view();
    return { tool: this.tool, backends: r.backends.slice(), assignments: r.assignments.slice() };
  }
}

/** A tool in a table: a compact entry or a route with lists of any length. */
type TableEntry = SoleRoute | ToolRoute;

function routeOf(e: TableEntry): ToolRoute {
  return e instanceof SoleRoute ? e.route() : e;
}

function viewOf(e: TableEntry): ToolRoute {
  return e instanceof SoleRoute ? e.view() : e;
}

/** The entry for a tool's lists: compact when they allow it. */
function entryOf(tool: string, backends: RouteBackend[], assignments: RouteAssignment[]): TableEntry {
  if (backends.length > 1 || assignments.length > 1) return freezeRoute(tool, backends, assignments);
  const b = backends.length === 1 ? backends[0] : null;
  const a = assignments.length === 1 ? assignments[0] : null;
  return new SoleRoute(tool, b ? b.id : null, b ? b.url : '', b ? sourceLiteral(b.source) : 'registered', b ? b.held : false, a ? a.host : null, a ? a.port : 0);
}

/**
 * The table's tools are spread over this many maps by a hash of the name: an update copies the shards
 * of the tools it changes, not one map of every tool (at 100,000 tools that copy took tens of ms per
 * change, on the event loop, between the API's answer and the route: bench/proxy.ts).
 */
const SHARD_BITS = 8;
const SHARDS = 1 << SHARD_BITS;
const EMPTY_SHARD: ReadonlyMap<string, TableEntry> = new Map();

/** FNV-1a of the tool name; its top bits pick the shard. */
function shardOf(tool: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tool.length; i++) h = Math.imul(h ^ tool.charCodeAt(i), 0x01000193);
  return h >>> (32 - SHARD_BITS);
}

interface Counts {
  /** Tools with at least one backend that is not held. */
  routes: number;
  backends: number;
  assignments: number;
}

function countInto(c: Counts, e: TableEntry | undefined, sign: 1 | -1): void {
  if (!e) return;
  const backends = e instanceof SoleRoute ? e.backendCount : e.backends.length;
  const live = e instanceof SoleRoute ? e.liveBackendCount > 0 : e.backends.some((b) => !b.held);
  if (live) c.routes += sign;
  c.backends += sign * backends;
  c.assignments += sign * (e instanceof SoleRoute ? e.assignmentCount : e.assignments.length);
}

/** A tool's route being edited by withChanges: copies of the arrays, the old route's objects reused. */
interface Draft {
  backends: RouteBackend[];
  assignments: RouteAssignment[];
  /** What the table had; undefined for a new tool. */
  before: ToolRoute | undefined;
}

/** Whether the draft holds the very objects the route had: a renewal that changed nothing. */
function unchanged(d: Draft): boolean {
  const b = d.before;
  if (!b || b.backends.length !== d.backends.length || b.assignments.length !== d.assignments.length) return false;
  return b.backends.every((x, i) => x === d.backends[i]) && b.assignments.every((x, i) => x === d.assignments[i]);
}

/**
 * One immutable snapshot of every route. The proxy swaps whole tables (fabio style): a request reads
 * one table from start to end and never sees half of an update. Tools untouched by an update keep their
 * ToolRoute objects, so an update costs the changed tools plus one Map copy, not a rebuild.
 */
export class RouteTable {
  readonly builtAt = Date.now();
  readonly routeCount: number;
  readonly backendCount: number;
  readonly assignmentCount: number;

  private constructor(
    /** SHARDS maps, never changed once the table is built; EMPTY_SHARD stands for every empty one. */
    private readonly shards: readonly ReadonlyMap<string, TableEntry>[],
    readonly epoch: string,
    readonly version: number,
    counts: Counts,
  ) {
    this.routeCount = counts.routes;
    this.backendCount = counts.backends;
    this.assignmentCount = counts.assignments;
    Object.freeze(this);
  }

  static empty(): RouteTable {
    return new RouteTable(new Array<ReadonlyMap<string, TableEntry>>(SHARDS).fill(EMPTY_SHARD), '', 0, { routes: 0, backends: 0, assignments: 0 });
  }

  /** A table from every record at once (a TableSnapshot will do). */
  static fromSnapshot(s: TableVersion & { backends: readonly RouteRecord[]; assignments: readonly RouteAssignment[] }): RouteTable {
    const b = RouteTable.builder();
    for (const r of s.backends) b.backend(r);
    for (const a of s.assignments) b.assignment(a);
    return b.build(s);
  }

  /**
   * A table built from records handed one at a time, e.g. by Store.routeSnapshot as it reads them: each
   * record is garbage once handed over, so a reload of 100,000 routes never holds them all at once.
   */
  static builder(): RouteTableBuilder {
    // A tool's first record makes its SoleRoute, the very object the table keeps; a second backend or
    // assignment turns it into a draft that becomes its ToolRoute (frozen by build()). One small map per
    // shard rather than one of every tool.
    let shards = draftShards();
    let indexes = new Map<RouteDraft, DraftIndex>();
    // One string per host for the whole table: a platform runs many tools on each of a few hosts. Capped:
    // with a host per tool, a map of every host would be garbage the size of the table's strings, promoted
    // during the load (bench/proxy.ts puts 100,000 tools on 100,000 addresses).
    let hosts = new Map<string, string>();
    const sharedHost = (host: string): string => {
      const held = hosts.get(host);
      if (held !== undefined) return held;
      if (hosts.size < SHARED_HOSTS) hosts.set(host, host);
      return host;
    };
    return {
      backend(r: RouteRecord): void {
        // A URL the proxy cannot parse routes nowhere; the rest of the table must still load.
        if (!isRoutable(r.url)) return;
        const shard = shards[shardOf(r.tool)];
        const e = shard.get(r.tool);
        if (e === undefined) {
          shard.set(r.tool, new SoleRoute(r.tool, r.id, r.url, sourceLiteral(r.source), r.held === true, null, 0));
          return;
        }
        let d: RouteDraft;
        if (e instanceof SoleRoute) {
          if (e.id === null || e.id === r.id) {
            e.id = r.id;
            e.url = r.url;
            e.source = sourceLiteral(r.source);
            e.held = r.held === true;
            return;
          }
          shard.set(e.tool, (d = e.toDraft()));
        } else {
          d = e;
        }
        addBackend(d, new TableBackend(r.id, r.url, sourceLiteral(r.source), r.held === true), indexes);
      },
      assignment(a: RouteAssignment): void {
        const shard = shards[shardOf(a.tool)];
        const e = shard.get(a.tool);
        if (e === undefined) {
          shard.set(a.tool, new SoleRoute(a.tool, null, '', 'registered', false, sharedHost(a.host), a.port));
          return;
        }
        let d: RouteDraft;
        if (e instanceof SoleRoute) {
          if (e.host === null || (e.host === a.host && e.port === a.port)) {
            e.host = sharedHost(a.host);
            e.port = a.port;
            return;
          }
          shard.set(e.tool, (d = e.toDraft()));
        } else {
          d = e;
        }
        addAssignment(d, freezeAssignment(a, d.tool, sharedHost(a.host)), indexes);
      },
      restart(): void {
        shards = draftShards();
        indexes = new Map();
        hosts = new Map();
      },
      hasBackend(tool: string, id: string, url: string): boolean {
        const e = shards[shardOf(tool)].get(tool);
        if (e instanceof SoleRoute) return e.id !== null && (e.id === id || e.url === url);
        return !!e && e.backends.some((b) => b.id === id || b.url === url);
      },
      hasTool(tool: string): boolean {
        return shards[shardOf(tool)].has(tool);
      },
      build(v: TableVersion): RouteTable {
        const counts: Counts = { routes: 0, backends: 0, assignments: 0 };
        const done = shards.map((shard): ReadonlyMap<string, TableEntry> => {
          if (shard.size === 0) return EMPTY_SHARD;
          for (const e of shard.values()) {
            if (!(e instanceof SoleRoute)) {
              if (e.backends.length > 0) e.backends = Object.freeze(exact(e.backends)) as RouteBackend[];
              if (e.assignments.length > 0) e.assignments = Object.freeze(exact(e.assignments)) as RouteAssignment[];
              Object.freeze(e);
            }
            countInto(counts, e, 1);
          }
          return shard;
        });
        shards = draftShards();
        indexes = new Map();
        hosts = new Map();
        return new RouteTable(done, v.epoch, v.version, counts);
      },
    };
  }

  /** A new table with the events applied in order; epoch and version are those of the last event. */
  withChanges(events: ChangeEvent[]): RouteTable {
    if (events.length === 0) return this;
    const drafts = new Map<string, Draft>();
    const draft = (tool: string): Draft => {
      let d = drafts.get(tool);
      if (!d) {
        const e = this.shards[shardOf(tool)].get(tool);
        const old = e && viewOf(e);
        d = { backends: old ? [...old.backends] : [], assignments: old ? [...old.assignments] : [], before: old };
        drafts.set(tool, d);
      }
      return d;
    };
    for (const ev of events) {
      for (const ch of ev.changes) {
        switch (ch.kind) {
          case 'backend.upsert': {
            const list = draft(ch.backend.tool).backends;
            const i = list.findIndex((b) => b.id === ch.backend.id);
            const same =
              i >= 0 && list[i].url === ch.backend.url && list[i].source === ch.backend.source && list[i].held === (ch.backend.held === true);
            if (same) break; // a renewal: keep the parsed object
            const rb = createRouteBackend(ch.backend);
            if (rb) upsertBackend(list, rb);
            else if (i >= 0) list.splice(i, 1);
            break;
          }
          case 'backend.remove': {
            const list = draft(ch.tool).backends;
            const i = list.findIndex((b) => b.id === ch.id);
            if (i >= 0) list.splice(i, 1);
            break;
          }
          case 'assignment.upsert':
            upsertAssignment(draft(ch.assignment.tool).assignments, freezeAssignment(ch.assignment));
            break;
          case 'assignment.remove': {
            const list = draft(ch.tool).assignments;
            const i = list.findIndex((a) => a.host === ch.host && a.port === ch.port);
            if (i >= 0) list.splice(i, 1);
            break;
          }
        }
      }
    }
    const shards = this.shards.slice();
    const copied = new Set<number>();
    const counts: Counts = { routes: this.routeCount, backends: this.backendCount, assignments: this.assignmentCount };
    for (const [tool, d] of drafts) {
      // A renewal keeps the entry, and with it a route already made for the hot path.
      if (unchanged(d)) continue;
      const i = shardOf(tool);
      if (!copied.has(i)) {
        copied.add(i);
        shards[i] = new Map(shards[i]);
      }
      const shard = shards[i] as Map<string, TableEntry>;
      countInto(counts, shard.get(tool), -1);
      if (d.backends.length === 0 && d.assignments.length === 0) {
        shard.delete(tool);
        continue;
      }
      const e = entryOf(tool, d.backends.slice(), d.assignments.slice());
      shard.set(tool, e);
      countInto(counts, e, 1);
    }
    for (const i of copied) if (shards[i].size === 0) shards[i] = EMPTY_SHARD;
    const last = events[events.length - 1];
    return new RouteTable(shards, last.epoch, last.version, counts);
  }

  lookup(tool: string): ToolRoute | undefined {
    const e = this.shards[shardOf(tool)].get(tool);
    return e === undefined ? undefined : routeOf(e);
  }

  /**
   * Each tool's backends by source (held ones included, and counted apart) and its assignments, counted
   * without making route objects: the metrics' pass over every new table (tools() would make ~500,000
   * objects at 100,000 tools).
   */
  tally(each: (tool: string, registered: number, discovered: number, assignments: number, held: Readonly<HeldCount>) => void): void {
    const held = { registered: 0, discovered: 0 };
    for (const shard of this.shards) {
      for (const e of shard.values()) {
        held.registered = 0;
        held.discovered = 0;
        if (e instanceof SoleRoute) {
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

  /** Every tool's route; one not looked up yet is made for the walk and not kept. */
  *tools(): IterableIterator<ToolRoute> {
    for (const shard of this.shards) for (const e of shard.values()) yield viewOf(e);
  }
}

/**
 * While a snapshot is read, a tool with more than one backend or assignment (the others stay SoleRoutes).
 * It holds each tool/id and host:port once; duplicates are still handled, and a tool with thousands of
 * backends must not cost a findIndex per insert, so an index is built only for lists past a few entries.
 */
interface RouteDraft {
  /** The first record's string of the name: the map key, the route's and its assignments' name. */
  tool: string;
  /** NO_BACKENDS while it has none (a tool with two assignments and no backend). */
  backends: RouteBackend[];
  assignments: RouteAssignment[];
}

/** Lookups by id and by host:port, built only for the lists of a tool past a few entries. */
interface DraftIndex {
  ids: Map<string, number> | null;
  keys: Map<string, number> | null;
}

function draftShards(): Map<string, SoleRoute | RouteDraft>[] {
  return Array.from({ length: SHARDS }, () => new Map<string, SoleRoute | RouteDraft>());
}

const SCAN = 8;
/** Distinct host strings a table build shares among assignments, at most. */
const SHARED_HOSTS = 4096;

function indexOf(indexes: Map<RouteDraft, DraftIndex>, d: RouteDraft): DraftIndex {
  let x = indexes.get(d);
  if (!x) indexes.set(d, (x = { ids: null, keys: null }));
  return x;
}

function addBackend(d: RouteDraft, rb: RouteBackend, indexes: Map<RouteDraft, DraftIndex>): void {
  const list = d.backends;
  if (list.length === 0) {
    d.backends = [rb];
    return;
  }
  const x = list.length >= SCAN ? indexOf(indexes, d) : null;
  if (x && !x.ids) x.ids = new Map(list.map((b, i) => [b.id, i]));
  const i = x?.ids ? x.ids.get(rb.id) ?? -1 : list.findIndex((b) => b.id === rb.id);
  if (i >= 0) {
    list[i] = rb;
    return;
  }
  list.push(rb);
  x?.ids?.set(rb.id, list.length - 1);
}

function addAssignment(d: RouteDraft, a: RouteAssignment, indexes: Map<RouteDraft, DraftIndex>): void {
  const list = d.assignments;
  if (list.length === 0) {
    d.assignments = [a];
    return;
  }
  const x = list.length >= SCAN ? indexOf(indexes, d) : null;
  if (x && !x.keys) x.keys = new Map(list.map((y, i) => [`${y.host}:${y.port}`, i]));
  const i = x?.keys ? x.keys.get(`${a.host}:${a.port}`) ?? -1 : list.findIndex((y) => y.host === a.host && y.port === a.port);
  if (i >= 0) {
    list[i] = a;
    return;
  }
  list.push(a);
  x?.keys?.set(`${a.host}:${a.port}`, list.length - 1);
}

/** Replaces the backend with the same id in place (round-robin order stays stable) or appends it. */
function upsertBackend(list: RouteBackend[], rb: RouteBackend): void {
  const i = list.findIndex((b) => b.id === rb.id);
  if (i >= 0) list[i] = rb;
  else list.push(rb);
}

function upsertAssignment(list: RouteAssignment[], a: RouteAssignment): void {
  const i = list.findIndex((x) => x.host === a.host && x.port === a.port);
  if (i >= 0) list[i] = a;
  else list.push(a);
}
