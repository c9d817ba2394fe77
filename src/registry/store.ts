import type {
  AllocateOptions,
  AllocatePortResult,
  Assignment,
  Backend,
  ChangeEvent,
  ExpireCandidate,
  OwnedRemoval,
  PolicyRecord,
  Revocation,
  RouteSink,
  TableSnapshot,
  TableVersion,
  TokenRecord,
  UpsertBackendInput,
  UpsertBackendResult,
} from './types';

/**
 * Everything the control plane stores. Two implementations pass one contract suite
 * (test/contract/store.contract.ts): RedisStore (shared by many processes) and MemoryStore (one process).
 *
 * Rules every implementation keeps:
 * - Each mutation is atomic: observers see the old state or the new one, never half.
 * - Each mutation that changes routing (a backend appears, disappears or changes url/source; an assignment
 *   appears or disappears) bumps the table version by exactly one and publishes one ChangeEvent stamped
 *   with that version. A lease renewal that changes nothing a proxy routes on does not: at fleet scale it
 *   would be thousands of feed messages a second carrying no routing information.
 * - Methods reject with StoreUnavailableError when the store cannot be reached; they never hang for long.
 */
export interface Store {
  readonly kind: 'memory' | 'redis';

  // ---- backends and leases ----
  /**
   * Heartbeat: create or renew a backend's lease (idempotent). Also, atomically:
   * - if no assignment holds `host:port`, creates one for `tool`;
   * - if another tool holds `host:port`, changes nothing and answers `port_conflict`;
   * - the same for each of `alsoHosts` at that port (the other addresses of the URL's name): any held by
   *   another tool is a `port_conflict`, the free ones are assigned to `tool`;
   * - with `assignedOnly`, a `host:port` (or `alsoHost:port`) no assignment holds changes nothing and answers
   *   `not_assigned` (checked after the conflicts);
   * - a `registered` upsert removes `discovered` backends of the same tool with the same url (the
   *   registration supersedes the discovery); a `discovered` upsert is refused when a live registered
   *   backend of the tool has that url (or its id), and replaces (reason `replaced`) registered backends of
   *   that url (or id) whose lease has lapsed (`expiresAt <= now`, the expirer's own test). Self-preservation
   *   keeps lapsed leases in the store; without this a tool restarted without its launcher could not be
   *   healed until the hard cap, while its stale registration is all that routes it.
   * `registeredAt` is kept across renewals; `expiresAt = now + ttl*1000`.
   * - a renewal of a held backend (markHeld) clears the mark, and that is a routing change (one version, one
   *   `backend.upsert` of the record without `held`): proxies route on the mark.
   * - the stored `instance` is always the one of this upsert (absent when it has none): the newest
   *   heartbeat owns the lease. An upsert whose instance differs from the stored one (either side may be
   *   absent) takes the lease over: it answers `created` and starts a new `registeredAt`, as another run
   *   registering. In an overlapping deploy the new launcher's heartbeat thus owns the backend id, and the
   *   old launcher's conditional deregistration (removeOwnedBackend) no longer matches.
   */
  upsertBackend(input: UpsertBackendInput): Promise<UpsertBackendResult>;
  /** Deregister. Answers false when there was no such backend. */
  removeBackend(tool: string, id: string): Promise<boolean>;
  /**
   * Deregister only what `instance` owns (compare-and-delete, atomic): removes the backend when its stored
   * instance equals `instance`; a backend held by another instance, or by none, is left unchanged
   * (`instance_mismatch`, no version bump, no event). `absent` when there is no such backend.
   */
  removeOwnedBackend(tool: string, id: string, instance: string): Promise<OwnedRemoval>;
  getBackends(tool: string): Promise<Backend[]>;
  /** Leases whose expiresAt <= now, oldest first, at most `limit`. */
  expiredLeases(now: number, limit: number): Promise<ExpireCandidate[]>;
  /** Number of backends currently stored (live or lapsed-but-held). */
  backendCount(): Promise<number>;
  /**
   * Removes each candidate only if its lease still has the expiresAt given (compare-and-delete), so a
   * heartbeat that renewed it in the meantime wins. Answers the candidates actually removed.
   */
  expireLeases(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]>;
  /**
   * Marks backends whose lease lapsed but which self-preservation keeps (`held: true`), so proxies stop
   * counting them as live. Compare on expiresAt as expireLeases does: a candidate renewed in the meantime is
   * left alone, and one already held is not marked again. The marked ones are one routing mutation (one
   * version, one event: a `backend.upsert` of each record with `held: true`); none marked: no version, no
   * event. Answers the candidates marked now. A held backend is still a lapsed lease: expireLeases removes
   * it, and a discovered upsert replaces it, as any other lapsed registration.
   */
  markHeld(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]>;

  // ---- port registry ----
  /**
   * The tool's assignment on `host`, or a new one: `opts.prefer` when it is free and within [min, max],
   * else the lowest port of [min, max] that is neither assigned on that host nor in `opts.exclude`.
   * With `opts.alsoHosts` (the other addresses of a host name) a port qualifies, the existing one included,
   * only when it is free or the tool's own on each of them too, and it is assigned to the tool on each
   * (one version, one event with every assignment created).
   * Never hands one host:port to two tools, also under concurrent callers.
   */
  allocatePort(tool: string, host: string, range: { min: number; max: number }, now: number, opts?: AllocateOptions): Promise<AllocatePortResult>;
  getAssignment(host: string, port: number): Promise<Assignment | null>;
  listAssignments(): Promise<Assignment[]>;
  /** Answers the released assignment, or null when there was none. */
  releasePort(host: string, port: number): Promise<Assignment | null>;
  /**
   * Writes back assignments the store lost (a registry's durable copy after the store lost its state):
   * each one is created only when its host:port is free, so whatever was written since the loss wins.
   * The created ones are one routing mutation (one version, one event), or one per batch when the store
   * splits a long list so as not to block others (RedisStore: 500 per script). Answers the created ones.
   */
  restoreAssignments(assignments: readonly Assignment[]): Promise<Assignment[]>;

  // ---- tool tokens (hashes only) ----
  putToken(record: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  /** Answers false when the token did not exist or belongs to another tool. */
  revokeToken(tool: string, id: string): Promise<boolean>;
  listTokens(): Promise<TokenRecord[]>;
  /** Revocations are never removed: a revoked id stays revoked (idempotent). */
  putRevocation(revocation: Revocation): Promise<void>;
  listRevocations(): Promise<Revocation[]>;
  /**
   * Writes back token records and revocations the store lost: a record is added only when its id is
   * neither stored nor revoked; revocations are added as putRevocation does.
   */
  restoreCredentials(tokens: readonly TokenRecord[], revocations: readonly Revocation[]): Promise<void>;

  // ---- operator policies (bans, tool policies, the maintenance switch) ----
  /**
   * Creates or replaces the record under its policyKey. A policy is routing state: each put is one
   * routing mutation (one version, one `policy.upsert` event with the record), so proxies apply it within
   * the feed's bound, and a proxy that missed it reloads it with the table.
   */
  putPolicy(record: PolicyRecord): Promise<void>;
  /**
   * Removes the record under `key`; with `ifUpdatedAt`, only while the stored record's updatedAt is that
   * one (compare-and-delete: a ban put again meanwhile stays). A removal is one routing mutation (one
   * version, one `policy.remove` event); nothing removed: no version, no event. Answers whether it removed.
   */
  removePolicy(key: string, ifUpdatedAt?: number): Promise<boolean>;
  getPolicy(key: string): Promise<PolicyRecord | null>;
  listPolicies(): Promise<PolicyRecord[]>;
  /**
   * Writes back policies the store lost (a registry's durable copy): each is created only when its key is
   * free, so whatever was written since the loss wins. The created ones are one routing mutation (one
   * version, one event), or one per batch of a long list. Answers the created ones.
   */
  restorePolicies(records: readonly PolicyRecord[]): Promise<PolicyRecord[]>;

  // ---- the table and its change feed ----
  /** Everything a proxy routes on, at one consistent version. */
  snapshot(): Promise<TableSnapshot>;
  /**
   * What a proxy routes on, handed to `sink` as it is read: every backend (its RouteRecord), every
   * assignment and every policy of the table at one version, which it answers. The store may restart the read
   * (sink.restart()); once it resolves, what the sink received since the last restart is that table. A
   * record may arrive twice (Redis HSCAN while its hash rehashes); the last one counts. When it rejects,
   * what the sink holds is partial.
   */
  routeSnapshot(sink: RouteSink): Promise<TableVersion>;
  version(): Promise<TableVersion>;
  /**
   * Receive change events as they are published. `onResync` is called when delivery may have had a gap
   * that versions cannot reveal by themselves (the subscription reconnected). Answers an unsubscribe.
   */
  subscribe(onChange: (event: ChangeEvent) => void, onResync: () => void): Promise<() => Promise<void>>;

  // ---- coordination between registry processes ----
  /** Take or keep a named lock held by `owner` for ttlMs. Answers whether `owner` holds it now. */
  acquireLock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLock(name: string, owner: string): Promise<void>;
  /** Store `now` under `name` and answer the previous value (null when none). */
  swapCheckpoint(name: string, now: number): Promise<number | null>;

  /** True when the store answers right now. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

/**
 * The write was applied on the Redis master, but fewer replicas than required acknowledged it in time
 * (redis.waitReplicas): it may still be lost if the master fails before replicating it.
 */
export class NotReplicatedError extends StoreUnavailableError {
  override readonly name = 'NotReplicatedError';
}

export function backendKey(tool: string, id: string): string {
  return `${tool}/${id}`;
}

export function assignmentKey(host: string, port: number): string {
  return `${host}:${port}`;
}
