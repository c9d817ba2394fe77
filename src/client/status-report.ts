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
}

export interface StatusAssignment {
  host: string;
  port: number;
}

export interface StatusTool {
  tool: string;
  backends: StatusBackend[];
  assignments: StatusAssignment[];
}

/**
 * Where the tools came from: a read of the store just now, the process's in-memory route table (store
 * unreachable), the last successful read (store unreachable, no route table here), or nothing at all.
 */
export type DataSource = 'store' | 'snapshot' | 'last-known' | 'none';

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
  tools: StatusTool[];
}
