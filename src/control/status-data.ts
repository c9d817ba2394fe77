import type { PassiveHealth } from '../proxy/health';
import { createRouteBackend } from '../table/route-backend';
import type { RouteTable } from '../table/route-table';
import type { Store } from '../registry/store';
import type { Assignment, Backend, BackendSource, TableSnapshot } from '../registry/types';
import { backendView } from '../registry/views';

export type { BackendHealth, DataSource, StatusAssignment, StatusBackend, StatusReport, StatusTool } from '../client/status-report';
import type { BackendHealth, StatusBackend, StatusReport, StatusTool } from '../client/status-report';

/** How a backend's health is judged: a proxy's passive health, or nothing (a registry-only process). */
export type HealthOf = (tool: string, b: { id: string; url: string; source: BackendSource }) => BackendHealth;

export function passiveHealthOf(health: PassiveHealth | null, now: () => number = Date.now): HealthOf {
  if (!health) return () => 'unknown';
  return (tool, b) => {
    const rb = createRouteBackend(b);
    if (!rb) return 'unknown';
    return health.isDown(tool, rb, now()) ? 'down' : 'ok';
  };
}

function byName(a: { tool: string }, b: { tool: string }): number {
  return a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0;
}

function sortTool(t: StatusTool): StatusTool {
  t.backends.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  t.assignments.sort((a, b) => (a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1));
  return t;
}

export function countsOf(tools: StatusTool[]): StatusReport['counts'] {
  const c = { tools: tools.length, routes: 0, backends: 0, assignments: 0, assignmentsWithoutBackend: 0 };
  for (const t of tools) {
    if (t.backends.length > 0) c.routes++;
    else c.assignmentsWithoutBackend += t.assignments.length;
    c.backends += t.backends.length;
    c.assignments += t.assignments.length;
  }
  return c;
}

/** Tools from backends and assignments as the store holds them. */
export function toolsFromRecords(backends: Backend[], assignments: Assignment[], now: number, healthOf: HealthOf): StatusTool[] {
  const tools = new Map<string, StatusTool>();
  const entry = (tool: string) => {
    let t = tools.get(tool);
    if (!t) tools.set(tool, (t = { tool, backends: [], assignments: [] }));
    return t;
  };
  for (const b of backends) {
    const v = backendView(b, now);
    const sb: StatusBackend = { id: b.id, url: b.url, source: b.source, leaseSecondsLeft: v.leaseSecondsLeft, expiresAt: v.expiresAt, health: healthOf(b.tool, b) };
    if (b.clientVersion !== undefined) sb.clientVersion = b.clientVersion;
    entry(b.tool).backends.push(sb);
  }
  for (const a of assignments) entry(a.tool).assignments.push({ host: a.host, port: a.port });
  return [...tools.values()].map(sortTool).sort(byName);
}

/**
 * Tools from a route table snapshot. It holds no lease times; those of the last store read are used
 * where the backend is the same one (same id and url).
 */
function toolsFromRouteTable(table: RouteTable, last: TableSnapshot | null, now: number, healthOf: HealthOf): StatusTool[] {
  const known = new Map<string, Backend>();
  for (const b of last?.backends ?? []) known.set(`${b.tool}/${b.id}`, b);
  const tools: StatusTool[] = [];
  for (const route of table.tools()) {
    const t: StatusTool = { tool: route.tool, backends: [], assignments: route.assignments.map((a) => ({ host: a.host, port: a.port })) };
    for (const b of route.backends) {
      const rec = known.get(`${route.tool}/${b.id}`);
      const same = rec !== undefined && rec.url === b.url;
      const v = same ? backendView(rec, now) : null;
      const sb: StatusBackend = { id: b.id, url: b.url, source: b.source, leaseSecondsLeft: v?.leaseSecondsLeft ?? null, expiresAt: v?.expiresAt ?? null, health: healthOf(route.tool, b) };
      if (same && rec.clientVersion !== undefined) sb.clientVersion = rec.clientVersion;
      t.backends.push(sb);
    }
    tools.push(sortTool(t));
  }
  return tools.sort(byName);
}

export interface StatusSourceOptions {
  store: Store;
  /** The process's route table, when it keeps one (proxies do; so may registries, for their metrics). */
  routes?: { current(): RouteTable | null; confirmedAt?: number } | null;
  health?: PassiveHealth | null;
  /** How long a page waits for the store before showing what it last knew (default 1000 ms). */
  timeoutMs?: number;
  now?: () => number;
}

class StatusTimeout extends Error {}

/**
 * Gathers the status report of this process without ever blocking on a dead store: one store read at a
 * time, bounded by timeoutMs; past it (or on an error) the report shows the last data this process has.
 */
export class StatusSource {
  private readonly opts: StatusSourceOptions;
  private readonly now: () => number;
  private readonly healthOf: HealthOf;
  private last: { snap: TableSnapshot; at: number } | null = null;
  private inFlight: Promise<TableSnapshot> | null = null;

  constructor(opts: StatusSourceOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.healthOf = passiveHealthOf(opts.health ?? null, this.now);
  }

  private read(): Promise<TableSnapshot> {
    // Page loads arriving while a read is under way share it: many refreshing browsers, or a hung store,
    // cost one outstanding read, not one per request.
    this.inFlight ??= this.opts.store
      .snapshot()
      .then((snap) => {
        this.last = { snap, at: this.now() };
        return snap;
      })
      .finally(() => {
        this.inFlight = null;
      });
    const read = this.inFlight;
    const timeoutMs = this.opts.timeoutMs ?? 1000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new StatusTimeout(`store did not answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      read.then(
        (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  async report(): Promise<StatusReport> {
    const now = this.now();
    const table = this.opts.routes?.current() ?? null;
    const confirmedAt = table ? this.opts.routes?.confirmedAt || table.builtAt : 0;
    const snapshot = table
      ? {
          epoch: table.epoch,
          version: table.version,
          routes: table.routeCount,
          backends: table.backendCount,
          ageSeconds: Math.max(0, Math.round((now - confirmedAt) / 1000)),
        }
      : null;
    const kind = this.opts.store.kind;
    let snap: TableSnapshot | null = null;
    try {
      snap = await this.read();
    } catch {
      snap = null;
    }
    let tools: StatusTool[];
    let store: StatusReport['store'];
    let version: StatusReport['table'];
    if (snap) {
      tools = toolsFromRecords(snap.backends, snap.assignments, now, this.healthOf);
      store = { kind, state: 'reachable', dataFrom: 'store', dataAt: new Date(this.last?.at ?? now).toISOString() };
      version = { epoch: snap.epoch, version: snap.version };
    } else if (table) {
      // What this process routes on right now is the best truth it has while the store is away.
      tools = toolsFromRouteTable(table, this.last?.snap ?? null, now, this.healthOf);
      store = { kind, state: 'unreachable', dataFrom: 'snapshot', dataAt: new Date(confirmedAt).toISOString() };
      version = { epoch: table.epoch, version: table.version };
    } else if (this.last) {
      tools = toolsFromRecords(this.last.snap.backends, this.last.snap.assignments, now, this.healthOf);
      store = { kind, state: 'unreachable', dataFrom: 'last-known', dataAt: new Date(this.last.at).toISOString() };
      version = { epoch: this.last.snap.epoch, version: this.last.snap.version };
    } else {
      tools = [];
      store = { kind, state: 'unreachable', dataFrom: 'none', dataAt: null };
      version = null;
    }
    return { generatedAt: new Date(now).toISOString(), store, table: version, snapshot, counts: countsOf(tools), tools };
  }
}
