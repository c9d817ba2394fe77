// The control plane's data model. Times are epoch milliseconds inside the process and in the store;
// the HTTP API renders them as ISO-8601 strings.

export type BackendSource = 'registered' | 'discovered';

/** One live instance of a tool, held by a lease that its heartbeats renew. */
export interface Backend {
  tool: string;
  id: string;
  url: string;
  source: BackendSource;
  registeredAt: number;
  lastHeartbeat: number;
  expiresAt: number;
  /** Lease length in seconds, as asked by the last heartbeat. */
  ttl: number;
  clientVersion?: string;
  /**
   * The run of the client whose heartbeat renewed the lease last (a launcher picks a random one per run).
   * Absent when that heartbeat carried none (older clients, discoveries). Deregistration may be made
   * conditional on it, so a launcher removes only a lease it still owns.
   */
  instance?: string;
  /**
   * Present (true) while self-preservation keeps this backend although its lease lapsed (Store.markHeld):
   * its heartbeats stopped, so it is most likely dead. Proxies never read lease times; this mark is how
   * they learn it, so they prefer live backends and answer "not running" when a held one refuses. The
   * next renewal clears it.
   */
  held?: true;
  /** Times the launcher restarted the backend's process (`switchboard run --restart`), as its last heartbeat said. */
  restarts?: number;
}

/** The registry's record that `tool` owns `host:port`. */
export interface Assignment {
  tool: string;
  host: string;
  port: number;
  createdAt: number;
}

/** A tool token as stored: only the hash of its secret is kept. */
export interface TokenRecord {
  id: string;
  tool: string;
  hash: string;
  createdAt: number;
}

/**
 * A revoked tool token: kept apart from the token records, because a signed token (sbs_...) is verified
 * without its record, so deleting the record alone would not stop it.
 */
export interface Revocation {
  id: string;
  tool: string;
  revokedAt: number;
}

/** Identifies one history of the table: a new epoch starts when the store lost its state (e.g. Redis restarted empty). */
export interface TableVersion {
  epoch: string;
  version: number;
}

/** The full route table at one version, read atomically. */
export interface TableSnapshot extends TableVersion {
  backends: Backend[];
  assignments: Assignment[];
}

/** Of a backend's record, what a proxy routes on; lease times and client version it never reads. */
export type RouteRecord = Pick<Backend, 'tool' | 'id' | 'url' | 'source' | 'held'>;

/** Of a port assignment, what a proxy routes on: where the tool should be listening, not since when. */
export type RouteAssignment = Readonly<Pick<Assignment, 'tool' | 'host' | 'port'>>;

/**
 * Receives the route table record by record as a store reads it (Store.routeSnapshot): a proxy builds its
 * table from records that are garbage a moment later, instead of holding every one of them at once.
 */
export interface RouteSink {
  backend(record: RouteRecord): void;
  assignment(assignment: Assignment): void;
  /** The read starts over: forget what was received so far. */
  restart(): void;
}

export type Change =
  | { kind: 'backend.upsert'; backend: Backend }
  | { kind: 'backend.remove'; tool: string; id: string; reason: 'deregistered' | 'expired' | 'replaced' }
  | { kind: 'assignment.upsert'; assignment: Assignment }
  | { kind: 'assignment.remove'; host: string; port: number; tool: string };

/** A message of the change feed: one mutation, stamped with the table version it produced. */
export type ChangeEvent = TableVersion & { changes: Change[] };

export interface UpsertBackendInput {
  tool: string;
  id: string;
  url: string;
  /** The assignment key the URL implies (its hostname and port). */
  host: string;
  port: number;
  ttl: number;
  source: BackendSource;
  clientVersion?: string;
  instance?: string;
  restarts?: number;
  now: number;
}

/**
 * removeOwnedBackend's answer: `instance_mismatch` when the stored backend's instance is another one (or
 * none); nothing was changed then.
 */
export type OwnedRemoval = 'removed' | 'absent' | 'instance_mismatch';

export type UpsertBackendResult =
  | { ok: true; backend: Backend; created: boolean; assignmentCreated: boolean }
  | { ok: false; reason: 'port_conflict'; holder: string }
  /**
   * A discovered backend never overwrites a live registered one: the registration is the better source.
   * A registered backend whose lease has lapsed (kept only by self-preservation, or not swept yet) is
   * replaced instead: its heartbeats stopped, and the discovery proves something answers there now.
   */
  | { ok: false; reason: 'registered_exists' };

/**
 * What allocatePort must respect besides the store's own assignments: after the store lost its state, the
 * registry still knows the ports tools held before (see src/registry/recovery.ts).
 */
export interface AllocateOptions {
  /** Ports of the host not to hand out: still held, as far as anyone knows, by running tools of the old table. */
  exclude?: readonly number[];
  /** The asking tool's own port of the old table: answered when it is free and within the range. */
  prefer?: number;
}

export type AllocatePortResult =
  | { ok: true; assignment: Assignment; created: boolean }
  | { ok: false; reason: 'range_exhausted' };

export interface ExpireCandidate {
  tool: string;
  id: string;
  expiresAt: number;
  /** The lease's ttl in seconds: the self-preservation hard cap is a multiple of it. */
  ttl: number;
}
