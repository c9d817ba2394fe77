import { randomUUID } from 'node:crypto';
import Redis, { ReplyError, type RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from '../logger';
import { policyKey } from '../table/policy-records';
import * as policyScripts from './redis-policy-scripts';
import { Slices } from '../table/slices';
import * as scripts from './redis-scripts';
import { ReplicaAck } from './replica-ack';
import { Store, StoreUnavailableError, assignmentKey } from './store';
import type {
  AllocateOptions,
  AllocatePortResult,
  Assignment,
  Backend,
  ChangeEvent,
  ExpireCandidate,
  OwnedRemoval,
  PolicyRecord,
  RouteSink,
  TableSnapshot,
  TableVersion,
  Revocation,
  TokenRecord,
  UpsertBackendInput,
  UpsertBackendResult,
} from './types';

export interface RedisStoreOptions {
  url?: string | null;
  sentinels?: { host: string; port: number }[];
  sentinelName?: string | null;
  keyPrefix: string;
  commandTimeoutMs: number;
  logger?: Logger;
  /** How long connect() waits for a ready connection (default: max(5 s, commandTimeoutMs)). */
  connectTimeoutMs?: number;
  /** How long snapshot() may take: a whole table outgrows a per-command budget (default: max(10 s, commandTimeoutMs)). */
  snapshotTimeoutMs?: number;
  /** Replicas that must acknowledge a write of the registration API before it answers (Redis WAIT); 0: off. */
  waitReplicas?: number;
  /** How long a write waits for those acknowledgements before it fails with NotReplicatedError. */
  waitTimeoutMs?: number;
}

// Replies that mean "Redis cannot serve this right now" rather than "this request is wrong".
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|NOREPLICAS|TRYAGAIN|CLUSTERDOWN|OOM)\b/;

const CHANGE_KINDS = new Set(['backend.upsert', 'backend.remove', 'assignment.upsert', 'assignment.remove', 'policy.upsert', 'policy.remove']);

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

const SCRIPTS = {
  sbUpsertBackend: { lua: scripts.UPSERT_BACKEND, numberOfKeys: 0 },
  sbRemoveBackend: { lua: scripts.REMOVE_BACKEND, numberOfKeys: 0 },
  sbExpireLeases: { lua: scripts.EXPIRE_LEASES, numberOfKeys: 0 },
  sbExpiredLeases: { lua: scripts.EXPIRED_LEASES, numberOfKeys: 0 },
  sbMarkHeld: { lua: scripts.MARK_HELD, numberOfKeys: 0 },
  sbAllocatePort: { lua: scripts.ALLOCATE_PORT, numberOfKeys: 0 },
  sbReleasePort: { lua: scripts.RELEASE_PORT, numberOfKeys: 0 },
  sbGetBackends: { lua: scripts.GET_BACKENDS, numberOfKeys: 0 },
  sbRevokeToken: { lua: scripts.REVOKE_TOKEN, numberOfKeys: 1 },
  sbRestoreAssignments: { lua: scripts.RESTORE_ASSIGNMENTS, numberOfKeys: 0 },
  sbRestoreCredentials: { lua: scripts.RESTORE_CREDENTIALS, numberOfKeys: 2 },
  sbPutPolicy: { lua: policyScripts.PUT_POLICY, numberOfKeys: 0 },
  sbRemovePolicy: { lua: policyScripts.REMOVE_POLICY, numberOfKeys: 0 },
  sbRestorePolicies: { lua: policyScripts.RESTORE_POLICIES, numberOfKeys: 0 },
  sbAcquireLock: { lua: scripts.ACQUIRE_LOCK, numberOfKeys: 1 },
  sbReleaseLock: { lua: scripts.RELEASE_LOCK, numberOfKeys: 1 },
} satisfies Record<string, { lua: string; numberOfKeys: number }>;
type ScriptName = keyof typeof SCRIPTS;

function isUnavailableReply(err: Error): boolean {
  if (UNAVAILABLE_REPLY.test(err.message)) return true;
  // A transaction refused as a whole (EXECABORT) carries the replies that refused its commands.
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  return Array.isArray(previous) && previous.some((e) => e instanceof Error && UNAVAILABLE_REPLY.test(e.message));
}

function toStoreError(op: string, err: unknown): Error {
  if (err instanceof StoreUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A reply error that is not about availability is a bug in a script or in the data: surface it as is.
  if (err instanceof ReplyError && !isUnavailableReply(err as Error)) return err as Error;
  return new StoreUnavailableError(`redis ${op} failed: ${message}`, err);
}

function isChangeEvent(value: unknown): value is ChangeEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.epoch === 'string' &&
    typeof v.version === 'number' &&
    Number.isInteger(v.version) &&
    Array.isArray(v.changes) &&
    v.changes.every((c) => typeof c === 'object' && c !== null && CHANGE_KINDS.has((c as { kind?: unknown }).kind as string))
  );
}

function credentialsFrom(url: string): Pick<RedisOptions, 'username' | 'password' | 'db'> {
  const u = new URL(url);
  const out: Pick<RedisOptions, 'username' | 'password' | 'db'> = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = Number(u.pathname.slice(1));
  if (u.pathname.length > 1 && Number.isInteger(db)) out.db = db;
  return out;
}

/** "tool/id" back into its parts; tool names carry no "/", ids may. */
function splitBackendKey(key: string): { tool: string; id: string } {
  const slash = key.indexOf('/');
  return { tool: key.slice(0, slash), id: key.slice(slash + 1) };
}

/** Records a restore script writes at once. */
const RESTORE_BATCH = 500;

/** Attempts at a paged read before routeSnapshot falls back to the atomic one. */
const PAGED_ATTEMPTS = 3;
/** HSCAN's COUNT: small enough that a page's strings die in the young generation, large enough for few round trips. */
const SCAN_PAGE = 1000;
/**
 * Records a snapshot read hands its sink in one turn of the event loop: a page of 1,000 parsed and
 * built in one go held a proxy's loop for 10-30 ms, 200 times per reload of 100,000 routes, and every
 * request waiting meanwhile got that delay (bench/reload-tail.ts).
 */
const RECORDS_PER_TURN = 200;

function byHostPort(a: Assignment, b: Assignment): number {
  return a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port;
}

/** quit() politely but never wait long or throw: close paths must always finish. */
async function closeQuietly(client: Redis): Promise<void> {
  if (client.status !== 'end') {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.quit(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 1000);
          timer.unref();
        }),
      ]);
    } catch {
      /* disconnected already, or quit refused while offline: disconnect below */
    } finally {
      clearTimeout(timer);
    }
  }
  client.disconnect();
}

function waitReady(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    const fail = (why: string) => {
      cleanup();
      reject(new StoreUnavailableError(`redis ${why}${lastError ? `: ${lastError.message}` : ''}`, lastError));
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => (lastError = err);
    const onEnd = () => fail('connection ended before it became ready');
    const timer = setTimeout(() => fail(`not ready within ${ms} ms`), ms);
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}

/**
 * The shared store: every mutation is one Lua script, so concurrent registry processes stay consistent,
 * and every routing mutation bumps `version` and publishes its ChangeEvent inside that same script.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly client: Redis;
  /** Carries the API's writes: the command connection, or with waitReplicas a connection of their own (see ReplicaAck). */
  private readonly writer: Redis;
  private readonly ack: ReplicaAck | null = null;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly log: Logger;
  private readonly subscribers = new Set<Redis>();
  /** Serves snapshot() only, with its own longer timeout; opened on first use. */
  private bulk: Redis | null = null;
  private readonly snapshotTimeoutMs: number;
  private connected = false;
  private closed = false;

  /** Starts connecting at once; calls made before the connection is ready fail fast. See connect(). */
  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.keyPrefix;
    this.channel = `${opts.keyPrefix}changes`;
    this.log = opts.logger ?? silentLogger();
    this.snapshotTimeoutMs = opts.snapshotTimeoutMs ?? Math.max(10_000, opts.commandTimeoutMs);

    // The command connection serves request handlers: it must answer or fail within commandTimeoutMs,
    // never queue work while Redis is away (no offline queue; in-flight commands fail on disconnect).
    const options: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
      // With sentinels a retry asks a sentinel for the master first: retry sooner, so the first retry after a
      // failover completes finds the new master within half a second.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), opts.sentinels?.length ? 500 : 2000),
      // After a Sentinel failover the old master turns replica: reconnect to find the new master.
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
      disableClientInfo: true,
    };
    if (opts.sentinels && opts.sentinels.length > 0) {
      if (!opts.sentinelName) throw new Error('sentinelName is required with sentinels');
      // A url given next to sentinels still carries the master's credentials and database.
      const credentials = opts.url ? credentialsFrom(opts.url) : {};
      this.client = new Redis({
        ...options,
        ...credentials,
        sentinels: opts.sentinels,
        name: opts.sentinelName,
        // A sentinel that hangs must not hold up finding the master (ioredis sets no timeout by default).
        sentinelCommandTimeout: opts.commandTimeoutMs,
        // ioredis's failoverDetector stays off: a +switch-master arriving while a reconnect asks a sentinel
        // ends that connection for good ("Connection is closed", seen in test/faults/sentinel-failover).
        // A demoted master drops its clients itself (Sentinel sends CLIENT KILL), and a write that still
        // reaches it gets READONLY, which reconnects (above).
        failoverDetector: false,
      });
    } else if (opts.url) {
      this.client = new Redis(opts.url, options);
    } else {
      throw new Error('RedisStore needs a url or sentinels');
    }

    for (const [name, def] of Object.entries(SCRIPTS)) this.client.defineCommand(name, def);
    this.writer = this.client;
    const waitReplicas = opts.waitReplicas ?? 0;
    if (waitReplicas > 0) {
      this.writer = this.client.duplicate();
      for (const [name, def] of Object.entries(SCRIPTS)) this.writer.defineCommand(name, def);
      this.writer.on('error', (err: Error) => this.log.debug({ event: 'store.error', err: err.message }, 'redis write connection error'));
      this.ack = new ReplicaAck(this.writer, waitReplicas, opts.waitTimeoutMs ?? 500);
    }

    this.client.on('error', (err: Error) => {
      if (this.connected) this.log.warn({ event: 'store.error', err: err.message }, 'redis connection error');
      else this.log.debug({ event: 'store.error', err: err.message }, 'redis connection error');
    });
    this.client.on('ready', () => {
      if (!this.connected) this.log.info({ event: 'store.connected' }, 'redis connection ready');
      this.connected = true;
    });
    this.client.on('close', () => {
      if (this.connected && !this.closed) this.log.warn({ event: 'store.connection_lost' }, 'redis connection lost; calls fail until it is back');
      this.connected = false;
    });
  }

  /** A store whose connection is ready, or StoreUnavailableError after connectTimeoutMs. */
  static async connect(opts: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(opts);
    try {
      const ms = opts.connectTimeoutMs ?? Math.max(5000, opts.commandTimeoutMs);
      await waitReady(store.client, ms);
      if (store.writer !== store.client) await waitReady(store.writer, ms);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private async run<T>(op: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toStoreError(op, err);
    }
  }

  private script(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    const command = (this.client as unknown as Record<string, ScriptCommand>)[name];
    return this.run(name, () => command.apply(this.client, args));
  }

  /** Routing scripts take the prefix and a candidate epoch for a store that has none yet. */
  private routingScript(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.script(name, this.prefix, randomUUID(), ...args);
  }

  /**
   * A write the registration API answers for: on the writer connection and, with waitReplicas, answered
   * only once replicated. Lease expiry, locks and checkpoints stay on the command connection: they are
   * redone by themselves if a failover loses them.
   */
  private apiWrite<T>(op: string, call: (conn: Redis) => Promise<T>): Promise<T> {
    const ack = this.ack;
    return this.run(op, () => (ack ? ack.write(op, () => call(this.writer)) : call(this.writer)));
  }

  private apiScript(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.apiWrite(name, (conn) => (conn as unknown as Record<string, ScriptCommand>)[name].apply(conn, args));
  }

  private apiRoutingScript(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.apiScript(name, this.prefix, randomUUID(), ...args);
  }

  // ---- backends and leases ----

  async upsertBackend(input: UpsertBackendInput): Promise<UpsertBackendResult> {
    const args: string[] = [
      input.tool,
      input.id,
      input.url,
      input.host,
      String(input.port),
      String(input.ttl),
      input.source,
      String(input.now),
      String(input.now + input.ttl * 1000),
      input.instance ?? '',
      input.restarts === undefined ? '' : String(input.restarts),
      (input.alsoHosts ?? []).join(' '),
      input.assignedOnly ? '1' : '',
      input.prefix ?? '',
    ];
    if (input.clientVersion !== undefined) args.push(input.clientVersion);
    const raw = (await this.apiRoutingScript('sbUpsertBackend', ...args)) as string;
    return JSON.parse(raw) as UpsertBackendResult;
  }

  async removeBackend(tool: string, id: string): Promise<boolean> {
    return (await this.apiRoutingScript('sbRemoveBackend', tool, id)) === 1;
  }

  async removeOwnedBackend(tool: string, id: string, instance: string): Promise<OwnedRemoval> {
    const answer = await this.apiRoutingScript('sbRemoveBackend', tool, id, instance);
    return answer === 1 ? 'removed' : answer === -1 ? 'instance_mismatch' : 'absent';
  }

  async getBackends(tool: string): Promise<Backend[]> {
    const raw = (await this.script('sbGetBackends', this.prefix, tool)) as string[];
    return raw.map((json) => JSON.parse(json) as Backend).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async expiredLeases(now: number, limit: number): Promise<ExpireCandidate[]> {
    if (limit <= 0) return [];
    // LIMIT 0 -1 is Redis for "no limit".
    const count = Number.isFinite(limit) ? String(Math.floor(limit)) : '-1';
    const flat = (await this.script('sbExpiredLeases', this.prefix, String(now), count)) as string[];
    const out: ExpireCandidate[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      out.push({ ...splitBackendKey(flat[i]), expiresAt: Number(flat[i + 1]), ttl: Number(flat[i + 2]) });
    }
    return out;
  }

  async backendCount(): Promise<number> {
    return this.run('backendCount', () => this.client.hlen(this.key('backends')));
  }

  async expireLeases(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]> {
    if (candidates.length === 0) return [];
    const args = candidates.flatMap((c) => [c.tool, c.id, String(c.expiresAt)]);
    const removed = (await this.routingScript('sbExpireLeases', ...args)) as (number | string)[];
    const out: ExpireCandidate[] = [];
    for (let i = 0; i < removed.length; i += 2) {
      const c = candidates[Number(removed[i]) - 1];
      out.push({ tool: c.tool, id: c.id, expiresAt: c.expiresAt, ttl: Number(removed[i + 1]) });
    }
    return out;
  }

  async markHeld(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]> {
    if (candidates.length === 0) return [];
    const args = candidates.flatMap((c) => [c.tool, c.id, String(c.expiresAt)]);
    const marked = (await this.routingScript('sbMarkHeld', ...args)) as (number | string)[];
    const out: ExpireCandidate[] = [];
    for (let i = 0; i < marked.length; i += 2) {
      const c = candidates[Number(marked[i]) - 1];
      out.push({ tool: c.tool, id: c.id, expiresAt: c.expiresAt, ttl: Number(marked[i + 1]) });
    }
    return out;
  }

  // ---- port registry ----

  async allocatePort(tool: string, host: string, range: { min: number; max: number }, now: number, opts: AllocateOptions = {}): Promise<AllocatePortResult> {
    const prefer = opts.prefer === undefined ? '' : String(opts.prefer);
    // Only exclusions within the range can matter to the search.
    const exclude = (opts.exclude ?? []).filter((p) => p >= range.min && p <= range.max).map(String);
    const also = (opts.alsoHosts ?? []).join(' ');
    const raw = (await this.apiRoutingScript('sbAllocatePort', tool, host, String(range.min), String(range.max), String(now), prefer, also, ...exclude)) as string;
    return JSON.parse(raw) as AllocatePortResult;
  }

  async getAssignment(host: string, port: number): Promise<Assignment | null> {
    const raw = await this.run('getAssignment', () => this.client.hget(this.key('assign'), assignmentKey(host, port)));
    return raw === null ? null : (JSON.parse(raw) as Assignment);
  }

  async listAssignments(): Promise<Assignment[]> {
    const raw = await this.run('listAssignments', () => this.client.hvals(this.key('assign')));
    return raw.map((json) => JSON.parse(json) as Assignment).sort(byHostPort);
  }

  async releasePort(host: string, port: number): Promise<Assignment | null> {
    const raw = (await this.apiRoutingScript('sbReleasePort', host, String(port))) as string | null;
    return raw === null ? null : (JSON.parse(raw) as Assignment);
  }

  async restoreAssignments(assignments: readonly Assignment[]): Promise<Assignment[]> {
    const created: Assignment[] = [];
    // Batches keep each script short: Redis serves nobody else while one runs.
    for (let i = 0; i < assignments.length; i += RESTORE_BATCH) {
      const batch = assignments.slice(i, i + RESTORE_BATCH).map((a) => JSON.stringify({ tool: a.tool, host: a.host, port: a.port, createdAt: a.createdAt }));
      const raw = (await this.apiRoutingScript('sbRestoreAssignments', ...batch)) as string[];
      for (const json of raw) created.push(JSON.parse(json) as Assignment);
    }
    return created;
  }

  // ---- tool tokens ----

  async putToken(record: TokenRecord): Promise<void> {
    await this.apiWrite('putToken', (conn) => conn.hset(this.key('tokens'), record.id, JSON.stringify(record)));
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const raw = await this.run('getToken', () => this.client.hget(this.key('tokens'), id));
    return raw === null ? null : (JSON.parse(raw) as TokenRecord);
  }

  async revokeToken(tool: string, id: string): Promise<boolean> {
    return (await this.apiScript('sbRevokeToken', this.key('tokens'), tool, id)) === 1;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const raw = await this.run('listTokens', () => this.client.hvals(this.key('tokens')));
    return raw.map((json) => JSON.parse(json) as TokenRecord);
  }

  async putRevocation(revocation: Revocation): Promise<void> {
    await this.apiWrite('putRevocation', (conn) => conn.hsetnx(this.key('revoked'), revocation.id, JSON.stringify(revocation)));
  }

  async listRevocations(): Promise<Revocation[]> {
    const raw = await this.run('listRevocations', () => this.client.hvals(this.key('revoked')));
    return raw.map((json) => JSON.parse(json) as Revocation);
  }

  async restoreCredentials(tokens: readonly TokenRecord[], revocations: readonly Revocation[]): Promise<void> {
    // Every revocation goes in before any token, so a revoked token's record never comes back.
    for (let i = 0; i < revocations.length; i += RESTORE_BATCH) {
      const revs = revocations.slice(i, i + RESTORE_BATCH);
      await this.apiScript('sbRestoreCredentials', this.key('tokens'), this.key('revoked'), String(revs.length), ...revs.flatMap((r) => [r.id, JSON.stringify(r)]));
    }
    for (let i = 0; i < tokens.length; i += RESTORE_BATCH) {
      const toks = tokens.slice(i, i + RESTORE_BATCH);
      await this.apiScript('sbRestoreCredentials', this.key('tokens'), this.key('revoked'), '0', ...toks.flatMap((t) => [t.id, JSON.stringify(t)]));
    }
  }

  // ---- operator policies ----

  async putPolicy(record: PolicyRecord): Promise<void> {
    await this.apiRoutingScript('sbPutPolicy', policyKey(record), JSON.stringify(record));
  }

  async removePolicy(key: string, ifUpdatedAt?: number): Promise<boolean> {
    return (await this.apiRoutingScript('sbRemovePolicy', key, ifUpdatedAt === undefined ? '' : String(ifUpdatedAt))) === 1;
  }

  async getPolicy(key: string): Promise<PolicyRecord | null> {
    const raw = await this.run('getPolicy', () => this.client.hget(this.key('policies'), key));
    return raw === null ? null : (JSON.parse(raw) as PolicyRecord);
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    const raw = await this.run('listPolicies', () => this.client.hvals(this.key('policies')));
    return raw.map((json) => JSON.parse(json) as PolicyRecord);
  }

  async restorePolicies(records: readonly PolicyRecord[]): Promise<PolicyRecord[]> {
    const created: PolicyRecord[] = [];
    for (let i = 0; i < records.length; i += RESTORE_BATCH) {
      const pairs = records.slice(i, i + RESTORE_BATCH).flatMap((r) => [policyKey(r), JSON.stringify(r)]);
      const raw = (await this.apiRoutingScript('sbRestorePolicies', ...pairs)) as string[];
      for (const json of raw) created.push(JSON.parse(json) as PolicyRecord);
    }
    return created;
  }

  // ---- the table and its change feed ----

  /**
   * Reads a whole table on its own connection: at 100,000 backends the reply is ~20 MB and takes a good
   * part of a second, more than the hot path's commandTimeoutMs may allow.
   */
  async snapshot(): Promise<TableSnapshot> {
    const [epoch, version, backends, assignments, policies] = await this.run('snapshot', async () => {
      // The command connection knows at once whether Redis is there; don't wait on the bulk one to find out.
      if (this.closed || this.client.status !== 'ready') throw new StoreUnavailableError('redis is not connected');
      const replies = await this.bulkConnection()
        .multi()
        .set(this.key('epoch'), randomUUID(), 'NX')
        .get(this.key('epoch'))
        .get(this.key('version'))
        .hvals(this.key('backends'))
        .hvals(this.key('assign'))
        .hvals(this.key('policies'))
        .exec();
      return this.transactionResults(replies).slice(1) as [string, string | null, string[], string[], string[]];
    });
    return {
      epoch,
      version: Number(version ?? 0),
      backends: backends.map((json) => JSON.parse(json) as Backend),
      assignments: assignments.map((json) => JSON.parse(json) as Assignment),
      policies: policies.map((json) => JSON.parse(json) as PolicyRecord),
    };
  }

  /**
   * Read in pages (HSCAN) between two reads of the version, rather than in one reply: at 100,000
   * backends that reply and its parsed records (~80 MiB) were all alive at once, so the proxy's heap
   * grew by that much and an idle proxy kept it (bench/proxy.ts); a page's records die young. Every
   * routing mutation bumps the version, so the same version before and after means no backend or
   * assignment came or went in between: the pages are one table (HSCAN returns every field present
   * throughout, some twice while a hash rehashes). Under churn that keeps moving the version, the
   * atomic read of snapshot() answers instead.
   */
  async routeSnapshot(sink: RouteSink): Promise<TableVersion> {
    const slices = new Slices(RECORDS_PER_TURN);
    for (let attempt = 0; attempt < PAGED_ATTEMPTS; attempt++) {
      if (attempt > 0) sink.restart();
      const v = await this.run('routeSnapshot', () => this.pagedRoutes(sink, slices));
      if (v) return v;
    }
    sink.restart();
    const s = await this.snapshot();
    for (const b of s.backends) {
      sink.backend(b);
      if (slices.count()) await slices.turn();
    }
    for (const a of s.assignments) {
      sink.assignment(a);
      if (slices.count()) await slices.turn();
    }
    for (const p of s.policies) {
      sink.policy(p);
      if (slices.count()) await slices.turn();
    }
    return { epoch: s.epoch, version: s.version };
  }

  /** null when the version moved during the read. */
  private async pagedRoutes(sink: RouteSink, slices: Slices): Promise<TableVersion | null> {
    if (this.closed || this.client.status !== 'ready') throw new StoreUnavailableError('redis is not connected');
    const conn = this.bulkConnection();
    const before = await this.versionOn(conn);
    await this.scanValues(conn, 'backends', slices, (json) => sink.backend(JSON.parse(json) as Backend));
    await this.scanValues(conn, 'assign', slices, (json) => sink.assignment(JSON.parse(json) as Assignment));
    await this.scanValues(conn, 'policies', slices, (json) => sink.policy(JSON.parse(json) as PolicyRecord));
    const after = await this.versionOn(conn);
    return after.epoch === before.epoch && after.version === before.version ? before : null;
  }

  /** Every value of a hash, page by page (HSCAN), handed over `slices` at a time. */
  private async scanValues(conn: Redis, name: string, slices: Slices, each: (value: string) => void): Promise<void> {
    const key = this.key(name);
    let next = conn.hscan(key, '0', 'COUNT', SCAN_PAGE);
    for (;;) {
      const [cursor, flat] = await next;
      // Ask for the next page before handing this one over: Redis works on it meanwhile. Should the sink
      // throw, that page's failure must not surface as an unhandled rejection.
      if (cursor !== '0') {
        next = conn.hscan(key, cursor, 'COUNT', SCAN_PAGE);
        next.catch(() => undefined);
      }
      for (let i = 1; i < flat.length; i += 2) {
        each(flat[i]);
        if (slices.count()) await slices.turn();
      }
      if (cursor === '0') return;
    }
  }

  async version(): Promise<TableVersion> {
    return this.run('version', () => this.versionOn(this.client));
  }

  private async versionOn(conn: Redis): Promise<TableVersion> {
    const replies = await conn
      .multi()
      .set(this.key('epoch'), randomUUID(), 'NX')
      .get(this.key('epoch'))
      .get(this.key('version'))
      .exec();
    const [epoch, version] = this.transactionResults(replies).slice(1) as [string, string | null];
    return { epoch, version: Number(version ?? 0) };
  }

  private bulkConnection(): Redis {
    if (!this.bulk) {
      // Its offline queue only covers its own first connect; maxRetriesPerRequest 0 (inherited) fails
      // queued commands as soon as a connection attempt fails.
      this.bulk = this.client.duplicate({ enableOfflineQueue: true, commandTimeout: this.snapshotTimeoutMs });
      this.bulk.on('error', (err: Error) => this.log.debug({ event: 'store.error', err: err.message }, 'redis snapshot connection error'));
    }
    return this.bulk;
  }

  private transactionResults(replies: [Error | null, unknown][] | null): unknown[] {
    if (!replies) throw new StoreUnavailableError('redis transaction was aborted');
    for (const [err] of replies) if (err) throw err;
    return replies.map(([, value]) => value);
  }

  async subscribe(onChange: (event: ChangeEvent) => void, onResync: () => void): Promise<() => Promise<void>> {
    if (this.closed) throw new StoreUnavailableError('redis store is closed');
    // Subscriber mode blocks other commands, so the feed gets its own connection. It may queue while
    // offline: nothing waits on it, and after a reconnect it must subscribe again.
    const sub = this.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.subscribers.add(sub);
    let active = true;
    let readyBefore = false;

    sub.on('error', (err: Error) => this.log.debug({ event: 'store.error', err: err.message }, 'redis feed connection error'));
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      let event: unknown;
      try {
        event = JSON.parse(message);
      } catch {
        event = undefined;
      }
      if (!isChangeEvent(event)) {
        this.log.warn({ channel, message: message.slice(0, 200) }, 'ignoring malformed change event');
        return;
      }
      try {
        onChange(event);
      } catch (err) {
        this.log.error({ event: 'feed.listener_failed', err }, 'change listener failed');
      }
    });
    sub.on('ready', () => {
      if (!readyBefore) {
        readyBefore = true;
        return;
      }
      // Events published while this connection was down are gone. Resync only once the subscription is
      // active again, so nothing published after the resync's snapshot can be missed.
      sub.subscribe(this.channel).then(
        () => {
          if (!active) return;
          this.log.info({ event: 'feed.reconnected' }, 'redis feed reconnected; resyncing');
          try {
            onResync();
          } catch (err) {
            this.log.error({ event: 'feed.listener_failed', err }, 'resync listener failed');
          }
        },
        (err: Error) => this.log.debug({ event: 'feed.resubscribe_failed', err: err.message }, 'redis feed resubscribe failed; retrying on next reconnect'),
      );
    });

    const unsubscribe = async () => {
      if (!active) return;
      active = false;
      this.subscribers.delete(sub);
      await closeQuietly(sub);
    };
    try {
      await this.run('subscribe', () => sub.subscribe(this.channel));
    } catch (err) {
      await unsubscribe();
      throw err;
    }
    return unsubscribe;
  }

  // ---- coordination ----

  async acquireLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.script('sbAcquireLock', this.key(`lock:${name}`), owner, String(ttlMs))) === 1;
  }

  async releaseLock(name: string, owner: string): Promise<void> {
    await this.script('sbReleaseLock', this.key(`lock:${name}`), owner);
  }

  async swapCheckpoint(name: string, now: number): Promise<number | null> {
    const prev = await this.run('swapCheckpoint', () => this.client.getset(this.key(`checkpoint:${name}`), String(now)));
    return prev === null ? null : Number(prev);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscribers].map((sub) => closeQuietly(sub)));
    this.subscribers.clear();
    if (this.bulk) await closeQuietly(this.bulk);
    if (this.writer !== this.client) await closeQuietly(this.writer);
    await closeQuietly(this.client);
  }
}
