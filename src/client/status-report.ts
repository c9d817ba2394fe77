// The wire form of GET /status.json: what the status page, the JSON endpoint and `switchboard status` show.
// It lives with the client because the CLI reads it over HTTP; the control port builds it
// (src/control/status-data.ts).

/**
 * What the status page, GET /status.json and `switchboard status` show. One shape for all three, so the
 * terminal and the browser never disagree. It carries no token and no secret: only routing data.
 */

/** ok: this proxy has seen no recent failure; down: in a passive-health cool-off; unknown: no proxy here. */
export type BackendHealth = 'ok' | 'down' | 'unknown';

export interface StatusBackend {
  id: string;
  url: string;
  source: 'registered' | 'discovered';
  /** null when the lease is not known (a route table holds no lease times). */
  leaseSecondsLeft: number | null;
  expiresAt: string | null;
  health: BackendHealth;
  clientVersion?: string;
  /** Present (true) while self-preservation keeps the backend although its lease lapsed: its heartbeats stopped. */
  held?: true;
}

export interface StatusAssignment {
  host: string;
  port: number;
}

/**
 * What a tool needs from its operator, most pressing first: `lost` (the store lost it: a restart or failover
 * dropped it and nobody removed it), `held` (a backend's heartbeats stopped and self-preservation keeps it),
 * `not_running` (an assignment and no live backend), `discovered` (routed by fallback discovery: it is not
 * registering itself), `live` (routed to backends that register).
 */
export const TOOL_STATES = ['lost', 'held', 'not_running', 'discovered', 'live'] as const;
export type ToolState = (typeof TOOL_STATES)[number];

/**
 * A tool's requests as this process's proxy answered them over the report's traffic window: counted by
 * the proxy itself (plain counters, nothing stored), null where this process runs no proxy.
 */
export interface ToolTraffic {
  requests: number;
  /** Of those, answered with a 5xx status (the proxy's own error pages included). */
  serverErrors: number;
  requestsPerSecond: number;
  /** serverErrors / requests; null without requests. */
  serverErrorRatio: number | null;
}

export interface StatusTool {
  tool: string;
  state: ToolState;
  /** Where the tool answers through this process's proxy (path form, or host form with `domain`); null: no proxy here. */
  url: string | null;
  traffic: ToolTraffic | null;
  backends: StatusBackend[];
  assignments: StatusAssignment[];
}

/** One point of the last hour's charts, sampled every `history.sampleSeconds`; null where this process has no such figure. */
export interface StatusSample {
  at: string;
  /** Tools with at least one live backend in this process's route table. */
  routes: number | null;
  lostTools: number | null;
  requestsPerSecond: number | null;
  serverErrorRatio: number | null;
}

/** Which tools a filtered report holds: `matched` of the report's tools passed the filter, `tools` is the page shown. */
export interface StatusSelection {
  tool: string;
  states: ToolState[];
  sort: string;
  matched: number;
  offset: number;
  limit: number | null;
}

/**
 * Where the tools came from: a read of the store just now, the process's in-memory route table (store
 * unreachable), the last successful read (store unreachable, no route table here), or nothing at all.
 */
export type DataSource = 'store' | 'snapshot' | 'last-known' | 'none';

/** A ban in force, as the status shows it (times ISO-8601). */
export interface StatusBan {
  id: string;
  cidr?: string;
  userAgent?: string;
  /** Absent: every tool. */
  tool?: string;
  reason?: string;
  /** null: until removed. */
  expiresAt: string | null;
}

/** A tool's policy, as the status shows it: only the fields it sets. */
export interface StatusToolPolicy {
  tool: string;
  maxConcurrent?: number;
  rateLimit?: { perClientPerSecond: number; burst: number };
  maxBodyBytes?: number;
  responseTimeoutSeconds?: number;
  maintenance?: { message: string; until: string | null };
  stripPrefix?: boolean;
}

/** The operator's policies in force: from the store, or from this process's route table while the store is away. */
export interface StatusPolicies {
  /** The global maintenance switch; null: off. */
  maintenance: { message: string; until: string | null } | null;
  /** Bans in force (expired ones left out), by id; at most `STATUS_BANS_SHOWN` of them. */
  bans: StatusBan[];
  /** Every ban in force, also those past the list's length. */
  banCount: number;
  tools: StatusToolPolicy[];
}

/** Bans a report lists at most: a ban list of thousands is counted, not printed. */
export const STATUS_BANS_SHOWN = 200;

export interface StatusReport {
  generatedAt: string;
  store: {
    kind: string | null;
    state: 'reachable' | 'unreachable' | 'unknown';
    dataFrom: DataSource;
    /** When the data shown was read (or, for a route table, last confirmed current against the store). */
    dataAt: string | null;
  };
  table: { epoch: string; version: number } | null;
  /** This process's in-memory route table (what a proxy routes on), when it keeps one. */
  snapshot: { epoch: string; version: number; routes: number; backends: number; ageSeconds: number } | null;
  counts: { tools: number; routes: number; backends: number; assignments: number; assignmentsWithoutBackend: number };
  /** Tools by state, over every tool of the report (not only those a filter selected). */
  states: Record<ToolState, number>;
  /** Every request this process's proxy answered over the traffic window (about the last minute); null: no proxy here. */
  traffic: (ToolTraffic & { windowSeconds: number }) | null;
  /** The last hour, oldest first. */
  history: { sampleSeconds: number; samples: StatusSample[] };
  /** Present when a filter (tool, state, sort, limit, offset) chose the tools shown. */
  selection?: StatusSelection;
  /** The operator's policies; absent in reports of a registry older than them. */
  policies?: StatusPolicies;
  tools: StatusTool[];
}
