import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import { FoldedCounter, PlainHistogram } from './plain-metrics';
import type { RouteTable } from './table/route-table';
import { tableStatsInSlices } from './table/stats';

/** Where the route-table gauges and switchboard_store_up are read at scrape time: a TableFeed. */
export interface TableSource {
  current(): RouteTable | null;
  readonly storeUp: boolean;
  /** Epoch ms when the table was last confirmed current against the store (0: never). */
  readonly confirmedAt: number;
  /** Tools the store lost without a deregistration or a port release, by name (TableFeed.lostTools). */
  lostTools(): readonly string[];
}

/** A tool whose heartbeats the registry is refusing (401): since when, and the lease they asked for. */
export interface RefusedHeartbeats {
  tool: string;
  /** Seconds since the first refusal of the current run of refusals. */
  seconds: number;
  ttlSeconds: number;
}

/** Where the TLS certificate gauge reads at scrape time: the proxy's certificate store. */
export interface CertificateSource {
  /** Every certificate served, by name, with its expiry (epoch ms). */
  expiries(): Array<{ name: string; notAfter: number }>;
}

/** Values of each labelled counter with a closed set of labels: exported at 0 from the start. */
export const REGISTRATION_RESULTS = ['created', 'renewed', 'rejected', 'conflict', 'unavailable'] as const;
export const PROXY_ERROR_KINDS = [
  'no_route',
  'not_running',
  'refused',
  'reset',
  'timeout',
  'bad_gateway',
  'not_implemented',
  'version_not_supported',
  'loop_detected',
  'request_timeout',
  'too_many_connections',
  'assigned_elsewhere',
] as const;
/** Why the proxy closed an HTTP/2 client's session for abuse (src/proxy/tls/h2-sessions.ts). */
export const HTTP2_ABUSE_REASONS = ['resets', 'control_frames', 'invalid_frames', 'flood', 'continuation', 'protocol_error'] as const;
export type Http2AbuseReason = (typeof HTTP2_ABUSE_REASONS)[number];
/** Why the proxy refused a request on an operator's policy (src/proxy/policy-gate.ts): also the access log's outcome. */
export const POLICY_REFUSAL_REASONS = ['banned', 'user_agent', 'rate_limited', 'over_concurrency', 'body_too_large', 'maintenance'] as const;
export type PolicyRefusalReason = (typeof POLICY_REFUSAL_REASONS)[number];
/** How a hold of a request ended (src/proxy/hold.ts). */
export const HOLD_OUTCOMES = ['forwarded', 'timeout', 'client_gone', 'overflow'] as const;
export const SELFHEAL_TRIGGERS = ['request', 'reconcile'] as const;
export const AUTH_FAILURE_REASONS = ['missing', 'malformed', 'invalid'] as const;
/** Why the control port refused a request before any route saw it (src/control/admission.ts). */
export const CONTROL_REFUSAL_REASONS = ['proxied', 'host'] as const;

export interface MetricsOptions {
  /** Node's process metrics (prom-client's defaults) and switchboard_event_loop_delay_seconds. */
  defaultMetrics?: boolean;
  /** The window of switchboard_event_loop_delay_seconds (LOOP_DELAY_WINDOW_MS; shorter in tests). */
  loopDelayWindowMs?: number;
  /** Adds a `tool` label to the proxy's request counter and histogram (config metrics.perToolLabels). */
  perToolLabels?: boolean;
}

/**
 * Tools named by switchboard_discovered_backends, at most. In the original incident hundreds of tools
 * missed their registration at once; the alert needs names, not a series per tool of a whole fleet.
 */
export const DISCOVERED_TOOLS_LIMIT = 200;

/** The window switchboard_event_loop_delay_seconds reports on: the last complete one, at most this old. */
export const LOOP_DELAY_WINDOW_MS = 10_000;
/** The timer whose lateness switchboard_event_loop_delay_seconds measures fires every this many ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;
/**
 * Figures of switchboard_event_loop_delay_seconds, by its `stat` label, and their percentile of the
 * window's delays. Not `quantile`: that label belongs to a summary, which this gauge of a window is not.
 */
export const LOOP_DELAY_STATS = [
  ['p50', 50],
  ['p99', 99],
  ['max', 100],
] as const;

/**
 * The event loop's delay (how late a 10 ms timer fires: work that held the loop, or a CPU the process
 * did not get) by window of LOOP_DELAY_WINDOW_MS: every request waiting on the process waits that long
 * too. Windows of their own, not reset by a scrape: prom-client's nodejs_eventloop_lag_* start over at
 * each scrape, so two Prometheus servers scraping one process would each see half of it.
 */
class LoopDelayWindows {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  /** The last complete window's figures (LOOP_DELAY_STATS), in seconds; null until one has ended. */
  last: number[] | null = null;

  constructor(windowMs: number) {
    this.histogram.enable();
    setInterval(() => this.roll(), windowMs).unref();
  }

  private roll(): void {
    const h = this.histogram;
    // The histogram holds the time between two ticks of its timer: the resolution itself is no delay.
    const late = (ns: number) => Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS) / 1000;
    this.last = h.count === 0 ? null : LOOP_DELAY_STATS.map(([, p]) => late(p === 100 ? h.max : h.percentile(p)));
    h.reset();
  }
}

/**
 * A counter's series exported at 0 from the start, for every known label value: a series that first
 * appears at its count hides that first count from increase() and rate(), so the first event of a kind
 * (the first self-heal, the first refused token) would go unseen by the alerts.
 */
function zeroed<T extends string>(counter: client.Counter<T>, label: T, values: readonly string[]): void {
  for (const value of values) counter.inc({ [label]: value } as Partial<Record<T, string>>, 0);
}

/**
 * All metrics of one process, in a registry of its own so several roles (or tests) in one process never
 * collide in prom-client's global registry. Names are the public interface alert rules are written against.
 *
 * `aggregator` says how `--workers N` combines one value from every process into the one the control port
 * shows (prom-client's AggregatorRegistry; 'sum' when not given). Events add up; a figure about the route
 * table is the same table seen by every process, so summing it would multiply it: those report the worst
 * process instead (fewest routes, oldest snapshot, store down in any).
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly perToolLabels: boolean;

  readonly leaseExpirations = new client.Counter({
    name: 'switchboard_lease_expirations_total',
    help: 'Backends removed because their lease lapsed.',
    registers: [this.registry],
  });
  readonly selfPreservationActive = new client.Gauge({
    name: 'switchboard_self_preservation_active',
    help: '1 while lease expiry is paused because too many leases would lapse at once.',
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly registrations = new client.Counter({
    name: 'switchboard_registrations_total',
    help: 'Heartbeats and registrations by result (created, renewed, rejected, conflict, unavailable).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /**
   * Where switchboard_client_versions reads its counts at scrape time (set by the Registry). It answers a
   * cached value so a scrape never waits on a full read of the store.
   */
  clientVersionsSource: (() => ReadonlyMap<string, number> | Promise<ReadonlyMap<string, number>>) | null = null;
  readonly clientVersions: client.Gauge<'version'> = new client.Gauge({
    name: 'switchboard_client_versions',
    help: 'Stored backends by the client version their last heartbeat reported ("unknown" when absent).',
    labelNames: ['version'],
    aggregator: 'max',
    registers: [this.registry],
    collect: async () => {
      if (!this.clientVersionsSource) return;
      let counts: ReadonlyMap<string, number>;
      try {
        counts = await this.clientVersionsSource();
      } catch {
        return; // a scrape must not fail because the store did: keep the last values
      }
      this.clientVersions.reset();
      for (const [version, n] of counts) this.clientVersions.set({ version }, n);
    },
  });
  /** Where switchboard_backend_restarts reads its tools at scrape time (set by the Registry; cached like the versions). */
  backendRestartsSource: (() => ReadonlyMap<string, number> | Promise<ReadonlyMap<string, number>>) | null = null;
  readonly backendRestarts: client.Gauge<'tool'> = new client.Gauge({
    name: 'switchboard_backend_restarts',
    help: `Restarts of a tool's process by its launcher (switchboard run --restart), the largest count its backends' last heartbeats reported; tools with restarts > 0 only (at most ${DISCOVERED_TOOLS_LIMIT}, most restarts first). A count that keeps growing is a crash loop.`,
    labelNames: ['tool'],
    aggregator: 'max',
    registers: [this.registry],
    collect: async () => {
      if (!this.backendRestartsSource) return;
      let counts: ReadonlyMap<string, number>;
      try {
        counts = await this.backendRestartsSource();
      } catch {
        return; // a scrape must not fail because the store did: keep the last values
      }
      this.backendRestarts.reset();
      const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, DISCOVERED_TOOLS_LIMIT);
      for (const [tool, n] of top) this.backendRestarts.set({ tool }, n);
    },
  });
  readonly storeUp: client.Gauge = new client.Gauge({
    name: 'switchboard_store_up',
    help: '1 when the store answered this process\'s last check (the route-table feed polls it), 0 when it did not.',
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly proxyRequests: client.Counter<string>;
  /** What the proxy adds to proxyRequests on every request, folded into it at each scrape. */
  readonly proxyRequestCounts = new FoldedCounter<string>();
  readonly proxyRequestDuration: PlainHistogram;
  readonly proxyErrors = new client.Counter({
    name: 'switchboard_proxy_errors_total',
    help:
      'Proxy failures by kind: no_route, not_running, refused, reset, timeout, bad_gateway (one per failed attempt), not_implemented (a transfer coding refused), ' +
      'version_not_supported (a request line of another HTTP than 1.x), loop_detected (a request going round between proxies), ' +
      "request_timeout (a client's body went silent), too_many_connections (a client over its share of a tool's backend connections), " +
      "assigned_elsewhere (a backend's name resolved to an address:port another tool holds: not connected).",
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly policyRefusals = new client.Counter({
    name: 'switchboard_policy_refusals_total',
    help:
      "Requests the proxy refused on an operator's policy, by reason: banned (a ban on the client's address or User-Agent), user_agent (no User-Agent while " +
      "proxy.requireUserAgent is on), rate_limited (over the tool's rateLimit), over_concurrency (the tool's maxConcurrent in flight on this proxy), " +
      "body_too_large (over the tool's maxBodyBytes), maintenance (the tool's or the global maintenance switch).",
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly policies = new client.Gauge({
    name: 'switchboard_policies',
    help: "The operator's policies in this process's route table, by kind: ban (expired ones not yet removed included), tool, maintenance.",
    labelNames: ['kind'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly proxyHeldRequests = new client.Gauge({
    name: 'switchboard_proxy_held_requests',
    help: 'Requests held right now for a tool that has an assignment but no live backend (proxy.holdMs), waiting for one to register or be discovered.',
    registers: [this.registry],
  });
  readonly proxyHolds = new client.Counter({
    name: 'switchboard_proxy_holds_total',
    help: 'Ends of holds by outcome: forwarded (a backend came), timeout (proxy.holdMs passed: the 503 page), client_gone, overflow (proxy.holdMaxPerTool requests already held: the 503 page at once).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly proxyHttp2SessionsClosed = new client.Counter({
    name: 'switchboard_proxy_http2_sessions_closed_total',
    help:
      'HTTP/2 client sessions closed for abuse, by reason: resets (streams cancelled before their answer past proxy.tls.http2.maxResetsPerSecond), ' +
      'control_frames (PING, SETTINGS, PRIORITY past proxy.tls.http2.maxControlFramesPerSecond), invalid_frames (past proxy.tls.http2.maxInvalidFrames), ' +
      'flood (frames queued for a peer that does not read them), continuation (a header block in too many CONTINUATION frames), protocol_error (any other HTTP/2 error).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly proxyHoldSeconds = new client.Histogram({
    name: 'switchboard_proxy_hold_seconds',
    help: 'Time a forwarded request was held waiting for a backend: the latency a restart added to it.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  // Route-table gauges: read at scrape time from the process's TableFeed (tableSource); absent in a process
  // that holds no table (the bare primary of `proxy --workers N`, whose workers report them).
  readonly routes: client.Gauge = new client.Gauge({
    name: 'switchboard_routes',
    help: 'Tools with at least one live backend in the route table (backends held by self-preservation do not count).',
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  // `state` was added beside `source`: summed over it (sum without (state)), a series reads as the old
  // one, every backend the table holds.
  readonly backends: client.Gauge<'source' | 'state'> = new client.Gauge({
    name: 'switchboard_backends',
    help: 'Backends in the route table, by source (registered, discovered) and state (live; held: lease lapsed, kept by self-preservation).',
    labelNames: ['source', 'state'],
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly assignments: client.Gauge = new client.Gauge({
    name: 'switchboard_assignments',
    help: 'Port assignments in the port registry.',
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly assignmentsWithoutBackend: client.Gauge = new client.Gauge({
    name: 'switchboard_assignments_without_backend',
    help: 'Port assignments whose tool has no live backend (a missed registration, or a tool that is down; backends held by self-preservation are not live).',
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly discoveredBackends: client.Gauge<'tool'> = new client.Gauge({
    name: 'switchboard_discovered_backends',
    help: `Backends routed by fallback port discovery, by tool: these tools are not registering (at most ${DISCOVERED_TOOLS_LIMIT} tools, by name).`,
    labelNames: ['tool'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly routeTableVersion: client.Gauge = new client.Gauge({
    name: 'switchboard_route_table_version',
    help: 'Version of the route table this process holds.',
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly snapshotAge: client.Gauge = new client.Gauge({
    name: 'switchboard_snapshot_age_seconds',
    help: 'Seconds since this process last confirmed its route table against the store.',
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly selfHeals = new client.Counter({
    name: 'switchboard_selfheal_total',
    help: 'Backends routed again by fallback port discovery, by trigger (request, reconcile).',
    labelNames: ['trigger'],
    registers: [this.registry],
  });
  readonly toolsLost: client.Gauge = new client.Gauge({
    name: 'switchboard_tools_lost',
    help: 'Tools the store lost (Redis restarted empty, a failover lost writes) that are not back: they had a backend or an assignment, have neither in the store now, and nobody deregistered them or released their port.',
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly lostTool: client.Gauge<'tool'> = new client.Gauge({
    name: 'switchboard_lost_tool',
    help: `1 for each tool counted by switchboard_tools_lost (at most ${DISCOVERED_TOOLS_LIMIT} tools, by name).`,
    labelNames: ['tool'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectTable(),
  });
  readonly authFailures = new client.Counter({
    name: 'switchboard_auth_failures_total',
    help: 'Requests to the registration API refused for their credentials (401, or 429 once their address failed too often), by reason (missing, malformed, invalid: unknown, revoked or a wrong secret).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly authThrottled = new client.Counter({
    name: 'switchboard_auth_throttled_total',
    help: 'Requests to the registration API with failed credentials answered 429 instead of 401: their client address failed authentication more often than control.authFailuresPerMinute.',
    registers: [this.registry],
  });
  /** Where the refused-heartbeat gauges read their tools at scrape time (set by the Registry). */
  refusedHeartbeatsSource: (() => readonly RefusedHeartbeats[]) | null = null;
  readonly heartbeatRefusedSeconds: client.Gauge<'tool'> = new client.Gauge({
    name: 'switchboard_heartbeat_refused_seconds',
    help: `Seconds since the registry started refusing (401) the heartbeats of a tool, while it does (at most ${DISCOVERED_TOOLS_LIMIT} tools).`,
    labelNames: ['tool'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectRefused(),
  });
  readonly heartbeatRefusedTtl: client.Gauge<'tool'> = new client.Gauge({
    name: 'switchboard_heartbeat_refused_ttl_seconds',
    help: 'The lease (ttl) the refused heartbeats of a tool asked for, or the default: past it, the tool\'s leases lapse.',
    labelNames: ['tool'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectRefused(),
  });
  readonly controlRefused = new client.Counter({
    name: 'switchboard_control_refused_total',
    help: 'Requests the control port refused before any route: proxied (forwarded by a switchboard proxy, 403), host (a Host name it does not answer to, 421).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly tlsCertificateExpiry: client.Gauge<'name'> = new client.Gauge({
    name: 'switchboard_tls_certificate_expiry_seconds',
    help: 'Seconds until each certificate the HTTPS port serves expires (negative once it has), by name: the <name> of a proxy.tls.certDir pair, "default" for proxy.tls.cert.',
    labelNames: ['name'],
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.collectCertificates(),
  });
  readonly portsOccupied = new client.Counter({
    name: 'switchboard_ports_occupied_total',
    help: 'Ports POST /v1/ports did not hand out because something already accepted connections on them.',
    registers: [this.registry],
  });

  readonly eventLoopDelay: client.Gauge<'stat'> = new client.Gauge({
    name: 'switchboard_event_loop_delay_seconds',
    help: `Delay of this process's event loop (how late a 10 ms timer fired) over the last complete window of ${LOOP_DELAY_WINDOW_MS / 1000} s, by stat (p50, p99, max): every request waiting on the process waited as long. Sustained, the process is at capacity.`,
    labelNames: ['stat'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.collectLoopDelay(),
  });

  private tableSource: TableSource | null = null;
  private loopDelay: LoopDelayWindows | null = null;
  private tableSourceSince = 0;
  private certificateSource: CertificateSource | null = null;

  constructor(opts: MetricsOptions = {}) {
    this.perToolLabels = opts.perToolLabels ?? false;
    this.proxyRequests = new client.Counter({
      name: 'switchboard_proxy_requests_total',
      help: `Requests answered by the proxy, by status code${this.perToolLabels ? ' and tool ("" when the request named no known tool)' : ''} (499: the client left before an answer).`,
      labelNames: this.perToolLabels ? ['code', 'tool'] : ['code'],
      registers: [this.registry],
      collect: this.proxyRequestCounts.fold,
    });
    this.proxyRequestCounts.counter = this.proxyRequests;
    this.proxyRequestDuration = new PlainHistogram(
      'switchboard_proxy_request_duration_seconds',
      `Time from request to the end of the response, through the proxy${this.perToolLabels ? ', by tool' : ''}.`,
      this.perToolLabels ? ['tool'] : [],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    // Exported from the start at 0 without a tool label, as prom-client does for a histogram without labels.
    if (!this.perToolLabels) this.proxyRequestDuration.cell();
    this.registry.registerMetric(this.proxyRequestDuration as unknown as client.Metric);
    zeroed(this.registrations, 'result', REGISTRATION_RESULTS);
    zeroed(this.proxyErrors, 'kind', PROXY_ERROR_KINDS);
    zeroed(this.selfHeals, 'trigger', SELFHEAL_TRIGGERS);
    zeroed(this.authFailures, 'reason', AUTH_FAILURE_REASONS);
    zeroed(this.proxyHolds, 'outcome', HOLD_OUTCOMES);
    zeroed(this.proxyHttp2SessionsClosed, 'reason', HTTP2_ABUSE_REASONS);
    zeroed(this.policyRefusals, 'reason', POLICY_REFUSAL_REASONS);
    zeroed(this.controlRefused, 'reason', CONTROL_REFUSAL_REASONS);
    // Without a table these say nothing: a 0 would read as "every route vanished" and page someone.
    for (const g of this.tableGauges()) g.remove();
    this.storeUp.remove();
    if (opts.defaultMetrics) {
      client.collectDefaultMetrics({ register: this.registry });
      this.loopDelay = new LoopDelayWindows(opts.loopDelayWindowMs ?? LOOP_DELAY_WINDOW_MS);
    }
  }

  /** Absent until a window has ended (and without process metrics): a 0 would claim an idle loop. */
  private collectLoopDelay(): void {
    this.eventLoopDelay.reset();
    const last = this.loopDelay?.last;
    if (!last) return;
    LOOP_DELAY_STATS.forEach(([stat], i) => this.eventLoopDelay.set({ stat }, last[i]));
  }

  /** Reads the route-table gauges and switchboard_store_up from `source` at every scrape, from memory. */
  observeTable(source: TableSource): void {
    this.tableSource = source;
    this.tableSourceSince = Date.now();
  }

  /** Reads switchboard_tls_certificate_expiry_seconds from `source` at every scrape. */
  observeCertificates(source: CertificateSource): void {
    this.certificateSource = source;
  }

  private collectCertificates(): void {
    this.tlsCertificateExpiry.reset();
    const src = this.certificateSource;
    if (!src) return;
    const now = Date.now();
    for (const c of src.expiries()) this.tlsCertificateExpiry.set({ name: c.name }, Math.round((c.notAfter - now) / 1000));
  }

  private tableGauges(): client.Gauge[] {
    return [this.routes, this.assignments, this.assignmentsWithoutBackend, this.routeTableVersion, this.snapshotAge, this.toolsLost];
  }

  private collectRefused(): void {
    const src = this.refusedHeartbeatsSource;
    this.heartbeatRefusedSeconds.reset();
    this.heartbeatRefusedTtl.reset();
    if (!src) return;
    for (const r of src().slice(0, DISCOVERED_TOOLS_LIMIT)) {
      this.heartbeatRefusedSeconds.set({ tool: r.tool }, r.seconds);
      this.heartbeatRefusedTtl.set({ tool: r.tool }, r.ttlSeconds);
    }
  }

  /**
   * Sets every table gauge from the source's current table; each gauge's collect calls it (cheap: memoised;
   * a new table's figures are computed once, in slices, and shared by the gauges of a scrape).
   */
  private async collectTable(): Promise<void> {
    const src = this.tableSource;
    if (!src) return;
    const now = Date.now();
    this.storeUp.set(src.storeUp ? 1 : 0);
    this.snapshotAge.set(Math.max(0, now - (src.confirmedAt || this.tableSourceSince)) / 1000);
    // Kept without a table too: the lost tools are what the feed remembers, not what it serves.
    const lost = src.lostTools();
    this.toolsLost.set(lost.length);
    this.lostTool.reset();
    for (const tool of lost.slice(0, DISCOVERED_TOOLS_LIMIT)) this.lostTool.set({ tool }, 1);
    const table = src.current();
    if (!table) {
      for (const g of [this.routes, this.assignments, this.assignmentsWithoutBackend, this.routeTableVersion]) g.remove();
      this.backends.reset();
      this.policies.reset();
      this.discoveredBackends.reset();
      return;
    }
    const s = await tableStatsInSlices(table);
    this.routes.set(s.routes);
    for (const source of ['registered', 'discovered'] as const) {
      this.backends.set({ source, state: 'live' }, s.backends[source].live);
      this.backends.set({ source, state: 'held' }, s.backends[source].held);
    }
    this.assignments.set(s.assignments);
    this.assignmentsWithoutBackend.set(s.assignmentsWithoutBackend);
    this.routeTableVersion.set(table.version);
    const p = table.policies;
    this.policies.set({ kind: 'ban' }, p.bans.length);
    this.policies.set({ kind: 'tool' }, p.tools.size);
    this.policies.set({ kind: 'maintenance' }, p.maintenance ? 1 : 0);
    this.discoveredBackends.reset();
    for (const [tool, n] of s.discoveredByTool.slice(0, DISCOVERED_TOOLS_LIMIT)) this.discoveredBackends.set({ tool }, n);
  }
}
