// The store's records of routes: what a snapshot and the change feed carry. They sit on the table's floor
// because the table is built from them; the registry, which writes them, re-exports them from
// src/registry/types.ts.

import type { PolicyRecord } from './policy-records';

export type { PolicyRecord } from './policy-records';

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
  /**
   * A sub-route ("/api"): the backend takes the tool's requests under this path, the longest prefix that
   * matches winning; absent: the requests no prefixed backend takes. Changing it is a routing change.
   */
  prefix?: string;
}

/** The registry's record that `tool` owns `host:port`. */
export interface Assignment {
  tool: string;
  host: string;
  port: number;
  createdAt: number;
}

/** Identifies one history of the table: a new epoch starts when the store lost its state (e.g. Redis restarted empty). */
export interface TableVersion {
  epoch: string;
  version: number;
}

/** Of a backend's record, what a proxy routes on; lease times and client version it never reads. */
export type RouteRecord = Pick<Backend, 'tool' | 'id' | 'url' | 'source' | 'held' | 'prefix'>;

/** Of a port assignment, what a proxy routes on: where the tool should be listening, not since when. */
export type RouteAssignment = Readonly<Pick<Assignment, 'tool' | 'host' | 'port'>>;

/**
 * Receives the route table record by record as a store reads it (Store.routeSnapshot): a proxy builds its
 * table from records that are garbage a moment later, instead of holding every one of them at once.
 */
export interface RouteSink {
  backend(record: RouteRecord): void;
  assignment(assignment: Assignment): void;
  /** An operator's policy (a ban, a tool's policy, the maintenance switch): part of the same table. */
  policy(record: PolicyRecord): void;
  /** The read starts over: forget what was received so far. */
  restart(): void;
}

export type Change =
  | { kind: 'backend.upsert'; backend: Backend }
  | { kind: 'backend.remove'; tool: string; id: string; reason: 'deregistered' | 'expired' | 'replaced' }
  | { kind: 'assignment.upsert'; assignment: Assignment }
  | { kind: 'assignment.remove'; host: string; port: number; tool: string }
  | { kind: 'policy.upsert'; policy: PolicyRecord }
  /** `key` as policyKey() makes it. */
  | { kind: 'policy.remove'; key: string };

/** A message of the change feed: one mutation, stamped with the table version it produced. */
export type ChangeEvent = TableVersion & { changes: Change[] };
