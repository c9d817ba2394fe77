// The control plane's data model. Times are epoch milliseconds inside the process and in the store;
// the HTTP API renders them as ISO-8601 strings. The records of routes the table is built from live in
// src/table/records.ts, below the registry; they are re-exported here for the registry's code.

import type { Assignment, Backend, BackendSource, PolicyRecord, TableVersion } from '../table/records';

export type {
  Assignment,
  Backend,
  BackendSource,
  Change,
  ChangeEvent,
  PolicyRecord,
  RouteAssignment,
  RouteRecord,
  RouteSink,
  TableVersion,
} from '../table/records';

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

/** The full route table at one version, read atomically. */
export interface TableSnapshot extends TableVersion {
  backends: Backend[];
  assignments: Assignment[];
  policies: PolicyRecord[];
}

export interface UpsertBackendInput {
  tool: string;
  id: string;
  url: string;
  /** The assignment key the URL implies: the address its host stands for (the lowest when several), and its port. */
  host: string;
  port: number;
  /**
   * The other addresses a URL's host name stands for. A connection to the name may reach any of them, so
   * each `alsoHost:port` must be free or the tool's own as well, and a free one is assigned to the tool too.
   */
  alsoHosts?: readonly string[];
  /**
   * Only a port the tool already holds (on `host` and every `alsoHost`): nothing is assigned, and a free
   * `host:port` answers `not_assigned`. A tool token registering outside the configured port range.
   */
  assignedOnly?: boolean;
  ttl: number;
  source: BackendSource;
  /** A sub-route: the backend takes the tool's requests under this path (Backend.prefix). */
  prefix?: string;
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
  | { ok: false; reason: 'registered_exists' }
  /** `assignedOnly` was asked and the tool does not hold every host:port of the URL; nothing changed. */
  | { ok: false; reason: 'not_assigned' };

/**
 * What allocatePort must respect besides the store's own assignments: after the store lost its state, the
 * registry still knows the ports tools held before (see src/registry/recovery.ts).
 */
export interface AllocateOptions {
  /** Ports of the host not to hand out: still held, as far as anyone knows, by running tools of the old table. */
  exclude?: readonly number[];
  /** The asking tool's own port of the old table: answered when it is free and within the range. */
  prefer?: number;
  /**
   * The other addresses of the host name asked for: the port must also be free or the tool's own on each,
   * and is assigned to the tool on each.
   */
  alsoHosts?: readonly string[];
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
