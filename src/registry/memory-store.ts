import { randomUUID } from 'node:crypto';
import { policyKey } from '../table/policy-records';
import { assignmentKey, backendKey, Store, StoreUnavailableError } from './store';
import type {
  AllocateOptions,
  AllocatePortResult,
  Assignment,
  Backend,
  Change,
  ChangeEvent,
  ExpireCandidate,
  OwnedRemoval,
  PolicyRecord,
  RouteRecord,
  RouteSink,
  TableSnapshot,
  TableVersion,
  Revocation,
  TokenRecord,
  UpsertBackendInput,
  UpsertBackendResult,
} from './types';

type Listener = { onChange: (event: ChangeEvent) => void; active: boolean };

/**
 * The store for a single registry process. Every mutation runs to completion synchronously, so it is
 * atomic without locks; events leave through one FIFO drained on a later tick, so subscribers see them
 * in version order and never re-enter a mutation half-way.
 *
 * Objects handed out are copies: a caller mutating a returned Backend must not change the table.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;

  private readonly epoch = randomUUID();
  private tableVersion = 0;
  private closed = false;

  private readonly backends = new Map<string, Backend>();
  /** tool -> id -> backend: getBackends without scanning the whole fleet. */
  private readonly backendsByTool = new Map<string, Map<string, Backend>>();
  /** tool + url -> ids: finding discovered duplicates of a registration, and registrations a discovery would shadow. */
  private readonly idsByToolUrl = new Map<string, Set<string>>();

  private readonly assignments = new Map<string, Assignment>();
  /** tool + host -> ports: allocatePort answers a tool's existing assignment without a scan. */
  private readonly portsByToolHost = new Map<string, Set<number>>();

  private readonly tokens = new Map<string, TokenRecord>();
  private readonly revocations = new Map<string, Revocation>();
  private readonly policies = new Map<string, PolicyRecord>();
  private readonly locks = new Map<string, { owner: string; expiresAt: number }>();
  private readonly checkpoints = new Map<string, number>();

  private readonly listeners = new Set<Listener>();
  private readonly outbox: Array<{ event: ChangeEvent; to: Listener[] }> = [];
  private flushScheduled = false;

  // ---- backends and leases ----

  async upsertBackend(input: UpsertBackendInput): Promise<UpsertBackendResult> {
    this.assertOpen();
    const { tool, id, url, host, port, ttl, source, clientVersion, instance, restarts, prefix, now } = input;
    const key = backendKey(tool, id);
    const existing = this.backends.get(key);

    const hosts = assignmentHosts(host, input.alsoHosts);
    const holders = hosts.map((h) => this.assignments.get(assignmentKey(h, port)));
    const other = holders.find((a) => a !== undefined && a.tool !== tool);
    if (other) return { ok: false, reason: 'port_conflict', holder: other.tool };
    if (input.assignedOnly && holders.includes(undefined)) return { ok: false, reason: 'not_assigned' };

    // A discovery may take the place of a registration only once that registration's lease has lapsed.
    const liveRegistration = (b: Backend | undefined) => b?.source === 'registered' && b.expiresAt > now;
    if (source === 'discovered') {
      if (liveRegistration(existing)) return { ok: false, reason: 'registered_exists' };
      for (const otherId of this.idsByToolUrl.get(toolUrlKey(tool, url)) ?? []) {
        if (liveRegistration(this.backends.get(backendKey(tool, otherId)))) return { ok: false, reason: 'registered_exists' };
      }
    }
    // Same id, lapsed registration: the discovered backend is a new one, not a renewal of it. Another
    // instance's heartbeat is another run taking the lease over: a new registration too.
    const renewal =
      existing !== undefined && !(source === 'discovered' && existing.source === 'registered') && existing.instance === instance;

    const changes: Change[] = [];
    let assignmentCreated = false;
    hosts.forEach((h, i) => {
      if (holders[i]) return;
      const assignment: Assignment = { tool, host: h, port, createdAt: now };
      this.putAssignment(assignment);
      assignmentCreated = true;
      changes.push({ kind: 'assignment.upsert', assignment: { ...assignment } });
    });

    // A registration supersedes discoveries of its url; a discovery supersedes lapsed registrations of it
    // (the checks above left no live one).
    const superseded = source === 'registered' ? 'discovered' : 'registered';
    for (const otherId of [...(this.idsByToolUrl.get(toolUrlKey(tool, url)) ?? [])]) {
      if (otherId === id) continue;
      const other = this.backends.get(backendKey(tool, otherId));
      if (other?.source !== superseded) continue;
      this.deleteBackend(other);
      changes.push({ kind: 'backend.remove', tool, id: otherId, reason: 'replaced' });
    }

    const backend: Backend = {
      tool,
      id,
      url,
      source,
      registeredAt: renewal && existing ? existing.registeredAt : now,
      lastHeartbeat: now,
      expiresAt: now + ttl * 1000,
      ttl,
    };
    if (clientVersion !== undefined) backend.clientVersion = clientVersion;
    if (instance !== undefined) backend.instance = instance;
    if (restarts !== undefined) backend.restarts = restarts;
    if (prefix !== undefined) backend.prefix = prefix;
    if (existing) this.deleteBackend(existing);
    this.insertBackend(backend);

    // A renewal that keeps url and source tells a proxy nothing new, unless it ends a hold.
    if (!existing || existing.url !== url || existing.source !== source || existing.prefix !== prefix || existing.held) {
      changes.push({ kind: 'backend.upsert', backend: { ...backend } });
    }
    if (changes.length > 0) this.publish(changes);
    return { ok: true, backend: { ...backend }, created: !renewal, assignmentCreated };
  }

  async removeBackend(tool: string, id: string): Promise<boolean> {
    this.assertOpen();
    const existing = this.backends.get(backendKey(tool, id));
    if (!existing) return false;
    this.deregister(existing);
    return true;
  }

  async removeOwnedBackend(tool: string, id: string, instance: string): Promise<OwnedRemoval> {
    this.assertOpen();
    // Compare and delete in one synchronous section: no heartbeat can take the lease over in between.
    const existing = this.backends.get(backendKey(tool, id));
    if (!existing) return 'absent';
    if (existing.instance !== instance) return 'instance_mismatch';
    this.deregister(existing);
    return 'removed';
  }

  async getBackends(tool: string): Promise<Backend[]> {
    this.assertOpen();
    return [...(this.backendsByTool.get(tool)?.values() ?? [])].map((b) => ({ ...b }));
  }

  /**
   * One O(n) pass over all leases, then a sort of only the lapsed ones. At 100,000 backends and a sweep
   * every few seconds that is well under a millisecond per call; a heap keyed by expiresAt would make it
   * O(k log n) but must be kept in step with every renewal, which costs more at heartbeat rates.
   */
  async expiredLeases(now: number, limit: number): Promise<ExpireCandidate[]> {
    this.assertOpen();
    if (limit <= 0) return [];
    const lapsed: ExpireCandidate[] = [];
    for (const b of this.backends.values()) {
      if (b.expiresAt <= now) lapsed.push({ tool: b.tool, id: b.id, expiresAt: b.expiresAt, ttl: b.ttl });
    }
    lapsed.sort((a, b) => a.expiresAt - b.expiresAt);
    return lapsed.slice(0, limit);
  }

  async backendCount(): Promise<number> {
    this.assertOpen();
    return this.backends.size;
  }

  async expireLeases(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]> {
    this.assertOpen();
    const removed: ExpireCandidate[] = [];
    const changes: Change[] = [];
    for (const c of candidates) {
      const b = this.backends.get(backendKey(c.tool, c.id));
      // A heartbeat after the candidate was read moved expiresAt: that lease is alive.
      if (!b || b.expiresAt !== c.expiresAt) continue;
      this.deleteBackend(b);
      removed.push({ tool: c.tool, id: c.id, expiresAt: c.expiresAt, ttl: b.ttl });
      changes.push({ kind: 'backend.remove', tool: c.tool, id: c.id, reason: 'expired' });
    }
    if (changes.length > 0) this.publish(changes);
    return removed;
  }

  async markHeld(candidates: ExpireCandidate[]): Promise<ExpireCandidate[]> {
    this.assertOpen();
    const marked: ExpireCandidate[] = [];
    const changes: Change[] = [];
    for (const c of candidates) {
      const b = this.backends.get(backendKey(c.tool, c.id));
      // Renewed since the candidate was read (expiresAt moved), or marked by an earlier round.
      if (!b || b.expiresAt !== c.expiresAt || b.held) continue;
      b.held = true;
      marked.push({ tool: c.tool, id: c.id, expiresAt: c.expiresAt, ttl: b.ttl });
      changes.push({ kind: 'backend.upsert', backend: { ...b } });
    }
    if (changes.length > 0) this.publish(changes);
    return marked;
  }

  // ---- port registry ----

  async allocatePort(
    tool: string,
    host: string,
    range: { min: number; max: number },
    now: number,
    opts: AllocateOptions = {},
  ): Promise<AllocatePortResult> {
    this.assertOpen();
    const also = assignmentHosts(host, opts.alsoHosts).slice(1);
    // On the name's other addresses the port may be free or the tool's own already.
    const usableOnAlso = (port: number) =>
      also.every((h) => {
        const a = this.assignments.get(assignmentKey(h, port));
        return a === undefined || a.tool === tool;
      });
    const held = [...(this.portsByToolHost.get(toolHostKey(tool, host)) ?? [])].filter(usableOnAlso);
    if (held.length > 0) {
      const port = Math.min(...held);
      this.assignOnAlso(tool, also, port, now, []);
      return { ok: true, assignment: { ...this.assignments.get(assignmentKey(host, port))! }, created: false };
    }
    const free = (port: number) => !this.assignments.has(assignmentKey(host, port)) && usableOnAlso(port);
    const { prefer } = opts;
    let port: number | null = prefer !== undefined && prefer >= range.min && prefer <= range.max && free(prefer) ? prefer : null;
    if (port === null) {
      const excluded = new Set(opts.exclude ?? []);
      for (let p = range.min; p <= range.max && port === null; p++) if (free(p) && !excluded.has(p)) port = p;
    }
    if (port === null) return { ok: false, reason: 'range_exhausted' };
    const assignment: Assignment = { tool, host, port, createdAt: now };
    this.putAssignment(assignment);
    this.assignOnAlso(tool, also, port, now, [{ kind: 'assignment.upsert', assignment: { ...assignment } }]);
    return { ok: true, assignment: { ...assignment }, created: true };
  }

  /** Assigns `port` to `tool` on each of `hosts` where nothing holds it; publishes those and `changes` as one. */
  private assignOnAlso(tool: string, hosts: readonly string[], port: number, now: number, changes: Change[]): void {
    for (const h of hosts) {
      if (this.assignments.has(assignmentKey(h, port))) continue;
      const a: Assignment = { tool, host: h, port, createdAt: now };
      this.putAssignment(a);
      changes.push({ kind: 'assignment.upsert', assignment: { ...a } });
    }
    if (changes.length > 0) this.publish(changes);
  }

  async getAssignment(host: string, port: number): Promise<Assignment | null> {
    this.assertOpen();
    const a = this.assignments.get(assignmentKey(host, port));
    return a ? { ...a } : null;
  }

  async listAssignments(): Promise<Assignment[]> {
    this.assertOpen();
    return [...this.assignments.values()].map((a) => ({ ...a }));
  }

  async releasePort(host: string, port: number): Promise<Assignment | null> {
    this.assertOpen();
    const key = assignmentKey(host, port);
    const a = this.assignments.get(key);
    if (!a) return null;
    this.assignments.delete(key);
    const thk = toolHostKey(a.tool, host);
    const ports = this.portsByToolHost.get(thk);
    ports?.delete(port);
    if (ports && ports.size === 0) this.portsByToolHost.delete(thk);
    this.publish([{ kind: 'assignment.remove', host, port, tool: a.tool }]);
    return { ...a };
  }

  async restoreAssignments(assignments: readonly Assignment[]): Promise<Assignment[]> {
    this.assertOpen();
    const created: Assignment[] = [];
    for (const a of assignments) {
      if (this.assignments.has(assignmentKey(a.host, a.port))) continue;
      const copy = { tool: a.tool, host: a.host, port: a.port, createdAt: a.createdAt };
      this.putAssignment(copy);
      created.push(copy);
    }
    if (created.length > 0) this.publish(created.map((a) => ({ kind: 'assignment.upsert', assignment: { ...a } })));
    return created.map((a) => ({ ...a }));
  }

  // ---- tool tokens ----

  async putToken(record: TokenRecord): Promise<void> {
    this.assertOpen();
    this.tokens.set(record.id, { ...record });
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    this.assertOpen();
    const t = this.tokens.get(id);
    return t ? { ...t } : null;
  }

  async revokeToken(tool: string, id: string): Promise<boolean> {
    this.assertOpen();
    const t = this.tokens.get(id);
    if (!t || t.tool !== tool) return false;
    this.tokens.delete(id);
    return true;
  }

  async listTokens(): Promise<TokenRecord[]> {
    this.assertOpen();
    return [...this.tokens.values()].map((t) => ({ ...t }));
  }

  async putRevocation(revocation: Revocation): Promise<void> {
    this.assertOpen();
    if (!this.revocations.has(revocation.id)) this.revocations.set(revocation.id, { ...revocation });
  }

  async listRevocations(): Promise<Revocation[]> {
    this.assertOpen();
    return [...this.revocations.values()].map((r) => ({ ...r }));
  }

  async restoreCredentials(tokens: readonly TokenRecord[], revocations: readonly Revocation[]): Promise<void> {
    this.assertOpen();
    for (const r of revocations) if (!this.revocations.has(r.id)) this.revocations.set(r.id, { ...r });
    for (const t of tokens) if (!this.tokens.has(t.id) && !this.revocations.has(t.id)) this.tokens.set(t.id, { ...t });
  }

  // ---- operator policies ----

  async putPolicy(record: PolicyRecord): Promise<void> {
    this.assertOpen();
    this.policies.set(policyKey(record), copyPolicy(record));
    this.publish([{ kind: 'policy.upsert', policy: copyPolicy(record) }]);
  }

  async removePolicy(key: string, ifUpdatedAt?: number): Promise<boolean> {
    this.assertOpen();
    const p = this.policies.get(key);
    if (!p || (ifUpdatedAt !== undefined && p.updatedAt !== ifUpdatedAt)) return false;
    this.policies.delete(key);
    this.publish([{ kind: 'policy.remove', key }]);
    return true;
  }

  async getPolicy(key: string): Promise<PolicyRecord | null> {
    this.assertOpen();
    const p = this.policies.get(key);
    return p ? copyPolicy(p) : null;
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    this.assertOpen();
    return [...this.policies.values()].map((p) => copyPolicy(p));
  }

  async restorePolicies(records: readonly PolicyRecord[]): Promise<PolicyRecord[]> {
    this.assertOpen();
    const created: PolicyRecord[] = [];
    for (const r of records) {
      const key = policyKey(r);
      if (this.policies.has(key)) continue;
      this.policies.set(key, copyPolicy(r));
      created.push(copyPolicy(r));
    }
    if (created.length > 0) this.publish(created.map((policy) => ({ kind: 'policy.upsert', policy: copyPolicy(policy) })));
    return created;
  }

  // ---- the table and its change feed ----

  async snapshot(): Promise<TableSnapshot> {
    this.assertOpen();
    return {
      epoch: this.epoch,
      version: this.tableVersion,
      backends: [...this.backends.values()].map((b) => ({ ...b })),
      assignments: [...this.assignments.values()].map((a) => ({ ...a })),
      policies: [...this.policies.values()].map((p) => copyPolicy(p)),
    };
  }

  async routeSnapshot(sink: RouteSink): Promise<TableVersion> {
    this.assertOpen();
    // Synchronous: no mutation can run in between, so this is one version.
    for (const b of this.backends.values()) {
      sink.backend(routeRecordOf(b));
    }
    for (const a of this.assignments.values()) sink.assignment({ ...a });
    for (const p of this.policies.values()) sink.policy(copyPolicy(p));
    return { epoch: this.epoch, version: this.tableVersion };
  }

  async version(): Promise<TableVersion> {
    this.assertOpen();
    return { epoch: this.epoch, version: this.tableVersion };
  }

  /** `onResync` is never called: in one process nothing can be lost between publish and delivery. */
  async subscribe(onChange: (event: ChangeEvent) => void, _onResync: () => void): Promise<() => Promise<void>> {
    this.assertOpen();
    const listener: Listener = { onChange, active: true };
    this.listeners.add(listener);
    return async () => {
      listener.active = false;
      this.listeners.delete(listener);
    };
  }

  // ---- coordination ----

  async acquireLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = Date.now();
    const held = this.locks.get(name);
    if (held && held.owner !== owner && held.expiresAt > now) return false;
    this.locks.set(name, { owner, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLock(name: string, owner: string): Promise<void> {
    this.assertOpen();
    if (this.locks.get(name)?.owner === owner) this.locks.delete(name);
  }

  async swapCheckpoint(name: string, now: number): Promise<number | null> {
    this.assertOpen();
    const previous = this.checkpoints.get(name);
    this.checkpoints.set(name, now);
    return previous ?? null;
  }

  async ping(): Promise<boolean> {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.listeners) l.active = false;
    this.listeners.clear();
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError('memory store is closed');
  }

  private deregister(b: Backend): void {
    this.deleteBackend(b);
    this.publish([{ kind: 'backend.remove', tool: b.tool, id: b.id, reason: 'deregistered' }]);
  }

  private insertBackend(b: Backend): void {
    this.backends.set(backendKey(b.tool, b.id), b);
    let byId = this.backendsByTool.get(b.tool);
    if (!byId) this.backendsByTool.set(b.tool, (byId = new Map()));
    byId.set(b.id, b);
    const uk = toolUrlKey(b.tool, b.url);
    let ids = this.idsByToolUrl.get(uk);
    if (!ids) this.idsByToolUrl.set(uk, (ids = new Set()));
    ids.add(b.id);
  }

  private deleteBackend(b: Backend): void {
    this.backends.delete(backendKey(b.tool, b.id));
    const byId = this.backendsByTool.get(b.tool);
    byId?.delete(b.id);
    if (byId && byId.size === 0) this.backendsByTool.delete(b.tool);
    const uk = toolUrlKey(b.tool, b.url);
    const ids = this.idsByToolUrl.get(uk);
    ids?.delete(b.id);
    if (ids && ids.size === 0) this.idsByToolUrl.delete(uk);
  }

  private putAssignment(a: Assignment): void {
    this.assignments.set(assignmentKey(a.host, a.port), a);
    const thk = toolHostKey(a.tool, a.host);
    let ports = this.portsByToolHost.get(thk);
    if (!ports) this.portsByToolHost.set(thk, (ports = new Set()));
    ports.add(a.port);
  }

  private publish(changes: Change[]): void {
    this.tableVersion += 1;
    if (this.listeners.size === 0) return;
    // Who hears an event is fixed when it happens: a later subscriber starts from a later snapshot.
    this.outbox.push({ event: { epoch: this.epoch, version: this.tableVersion, changes }, to: [...this.listeners] });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.outbox.splice(0);
    for (const { event, to } of batch) {
      for (const l of to) {
        if (!l.active) continue;
        try {
          l.onChange(event);
        } catch {
          // One faulty subscriber must not starve the others or break the store.
        }
      }
    }
  }
}

/** A policy record as handed out: a copy (nested objects too), made with spreads: structuredClone was ~5 µs a record. */
function copyPolicy<T extends PolicyRecord>(p: T): T {
  const out = { ...p };
  if (out.kind === 'tool') {
    if (out.rateLimit) out.rateLimit = { ...out.rateLimit };
    if (out.maintenance) out.maintenance = { ...out.maintenance };
  }
  return out;
}

/** Of a backend, what a proxy routes on; absent marks stay absent. */
function routeRecordOf(b: Backend): RouteRecord {
  const r: RouteRecord = { tool: b.tool, id: b.id, url: b.url, source: b.source };
  if (b.held) r.held = true;
  if (b.prefix !== undefined) r.prefix = b.prefix;
  return r;
}

// Newline cannot occur in a tool name, host or URL that passed validation, so the pair keys are unambiguous.
function toolUrlKey(tool: string, url: string): string {
  return `${tool}\n${url}`;
}

/** `host` and the other addresses of its name, each once, `host` first. */
function assignmentHosts(host: string, alsoHosts: readonly string[] | undefined): string[] {
  return alsoHosts && alsoHosts.length > 0 ? [...new Set([host, ...alsoHosts])] : [host];
}

function toolHostKey(tool: string, host: string): string {
  return `${tool}\n${host}`;
}
