import type { PassiveHealth } from '../proxy/health';
import type { RouteTable } from '../table/route-table';
import type { Store } from '../registry/store';
import type { TableSnapshot } from '../registry/types';
import { StatusHistory } from './status-history';
import { statusPolicies } from './status-policies';
import { countsOf, passiveHealthOf, toolsFromRecords, toolsFromRouteTable, withLostTools, type HealthOf } from './status-tools';
import { stateCounts } from './tool-state';
import { toolUrls, type ProxyAddress } from './tool-links';
import { NO_TRAFFIC, TrafficWindow, type TrafficSource } from './traffic-window';

export type { BackendHealth, DataSource, StatusAssignment, StatusBackend, StatusReport, StatusTool } from '../client/status-report';
import type { StatusReport, StatusTool } from '../client/status-report';
export { countsOf, passiveHealthOf, toolsFromRecords, type HealthOf } from './status-tools';

/** Default tick of the rates' ring (one reading every 10 s: a minute is 6 of them). */
export const SAMPLE_MS = 10_000;
/** Ticks per sample of the hour's charts (every 30 s at the default tick). */
export const TICKS_PER_HISTORY_SAMPLE = 3;

export interface StatusSourceOptions {
  store: Store;
  /** The process's route table, when it keeps one (proxies do; so may registries, for their metrics), and the tools the store lost. */
  routes?: { current(): RouteTable | null; confirmedAt?: number; lostTools?(): readonly string[] } | null;
  health?: PassiveHealth | null;
  /** The proxy's request counters, in a process that runs a proxy. */
  traffic?: TrafficSource | null;
  /** Where that proxy listens, for each tool's link. */
  proxy?: ProxyAddress | null;
  /** The tick of the rates and charts (start()); default SAMPLE_MS. */
  sampleMs?: number;
  /** How long a page waits for the store before showing what it last knew (default 1000 ms). */
  timeoutMs?: number;
  now?: () => number;
}

/** What a report is asked for with: the Host the page was reached by (each tool's link names it). */
export interface ReportView {
  host?: string;
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
  private readonly window: TrafficWindow | null;
  private readonly history: StatusHistory;
  private ticks = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: StatusSourceOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.healthOf = passiveHealthOf(opts.health ?? null, this.now);
    const now = this.now();
    this.window = opts.traffic ? new TrafficWindow(opts.traffic, now) : null;
    const sampleMs = opts.sampleMs ?? SAMPLE_MS;
    this.history = new StatusHistory(opts.routes ?? null, opts.traffic ?? null, sampleMs * TICKS_PER_HISTORY_SAMPLE, now);
  }

  /** Reads the counters into the rates' ring; every TICKS_PER_HISTORY_SAMPLE ticks, a sample of the charts. */
  tick(): void {
    const now = this.now();
    this.window?.read(now);
    if (++this.ticks % TICKS_PER_HISTORY_SAMPLE === 0) this.history.sample(now);
  }

  /** Ticks every sampleMs until stop(); the timer never keeps the process alive. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.opts.sampleMs ?? SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
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

  async report(view: ReportView = {}): Promise<StatusReport> {
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
    // The policies of the data shown: the store's, else this process's table's (it applies those), else the last read.
    const policyRecords = snap?.policies ?? table?.policies.records.values() ?? this.last?.snap.policies ?? [];
    const policies = statusPolicies(policyRecords, now);
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
    tools = this.withFigures(tools, now, view);
    const traffic = this.window ? { ...this.window.total(now), windowSeconds: Math.round(this.window.seconds(now)) } : null;
    // The charts' newest point is this moment, with the rates shown beside them (the last minute's).
    const current = { ...this.history.figures(now), ...(traffic && { requestsPerSecond: traffic.requestsPerSecond, serverErrorRatio: traffic.serverErrorRatio }) };
    return {
      generatedAt: new Date(now).toISOString(),
      store,
      table: version,
      snapshot,
      counts: countsOf(tools),
      states: stateCounts(tools),
      traffic,
      history: { sampleSeconds: this.history.sampleMs / 1000, samples: [...this.history.samples(), current] },
      policies,
      tools,
    };
  }

  /** Lost tools marked (and added), each tool's link and its traffic over the window. */
  private withFigures(found: StatusTool[], now: number, view: ReportView): StatusTool[] {
    const tools = withLostTools(found, this.opts.routes?.lostTools?.() ?? []);
    const urlOf = toolUrls(this.opts.proxy ?? null, view.host);
    const traffic = this.window?.perTool(now) ?? null;
    for (const t of tools) {
      t.url = urlOf(t.tool);
      t.traffic = traffic ? (traffic.get(t.tool) ?? NO_TRAFFIC) : null;
    }
    return tools;
  }
}
