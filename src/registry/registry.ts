import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { RegistryError } from './errors';
import { StoreUnavailableError, assignmentKey, type Store } from './store';
import { CachedFleetFigures, readFleetFigures } from './fleet-counts';
import { HeartbeatRefusals, type RefusalReason } from './heartbeat-refusals';
import { acceptsConnections } from './port-check';
import type { EpochRecovery } from './recovery';
import { generateSignedToken, generateToken, tokenIdOf, type Principal, type TokenSigner } from './tokens';
import type { AllocateOptions, Assignment, Backend, BackendSource, OwnedRemoval } from './types';
import { hostKey, hostKeys, originOf } from './host-keys';
import { storeRefusal } from './store-refusals';
import { AddressPolicy, type Lookup } from './url-policy';
import { Validators, type HeartbeatBody } from './validate';

export interface HeartbeatInput {
  tool: string;
  id: string;
  url: string;
  ttl?: number;
  clientVersion?: string;
  source: BackendSource;
}

export interface ToolEntry {
  tool: string;
  backends: Backend[];
  assignments: Assignment[];
}

export interface RegistryOptions {
  store: Store;
  config: Config;
  metrics: Metrics;
  logger: Logger;
  /** DNS resolution of backend and port hosts (the system resolver unless given). */
  lookup?: Lookup;
  now?: () => number;
  /** How old the cached client-version counts may get before a scrape triggers a refresh. */
  clientVersionsMaxAgeMs?: number;
  /** Signs new tool tokens (src/registry/token-keys.ts); without one, tokens are verified against the store only. */
  signer?: TokenSigner | null;
}

/** A part of a value that may still be on its way. */
function pick<T, U>(v: T | Promise<T>, part: (t: T) => U): U | Promise<U> {
  return v instanceof Promise ? v.then(part) : part(v);
}

/** New assignments tried per port request when something listens on them, before a 503. */
export const OCCUPIED_PORT_ATTEMPTS = 8;

type RegistrationResult = 'created' | 'renewed' | 'rejected' | 'conflict' | 'unavailable';

function byToolThenKey<T extends { tool: string }>(key: (x: T) => string) {
  return (a: T, b: T) => (a.tool === b.tool ? (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) : a.tool < b.tool ? -1 : 1);
}

/** Allocation options that also stay off the ports found occupied (the preferred one included). */
function avoiding(opts: AllocateOptions, occupied: readonly number[]): AllocateOptions {
  if (occupied.length === 0) return opts;
  const out: AllocateOptions = { ...opts, exclude: [...(opts.exclude ?? []), ...occupied] };
  if (opts.prefer !== undefined && occupied.includes(opts.prefer)) delete out.prefer;
  return out;
}

function byHostThenPort(a: Assignment, b: Assignment): number {
  return a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1;
}

/**
 * The registry's rules over the store: validation, defaults, the port-conflict answer and the
 * registration metrics. Used by the HTTP API and by the discovery reconciler, so both obey one set of rules.
 */
export class Registry {
  readonly validators: Validators;
  readonly policy: AddressPolicy;
  private readonly store: Store;
  readonly config: Config;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly clientVersionsMaxAgeMs: number;
  private readonly fleet: CachedFleetFigures;
  /** Tools whose launcher deregistered a backend, and until when discovery leaves them alone. */
  private readonly stopped = new Map<string, number>();
  private recovery: EpochRecovery | null = null;
  private readonly signer: TokenSigner | null;
  /** Heartbeats refused for their token, per tool (switchboard_heartbeat_refused_seconds, `auth.refused`). */
  readonly refusals: HeartbeatRefusals;

  constructor(opts: RegistryOptions) {
    this.store = opts.store;
    this.config = opts.config;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.clientVersionsMaxAgeMs = opts.clientVersionsMaxAgeMs ?? 5000;
    this.signer = opts.signer ?? null;
    this.validators = new Validators(opts.config.leases);
    this.policy = new AddressPolicy(opts.config, opts.lookup, this.now);
    this.fleet = new CachedFleetFigures(this.store, this.clientVersionsMaxAgeMs, this.logger, this.now);
    this.metrics.clientVersionsSource = () => pick(this.fleet.current(), (f) => f.versions);
    this.metrics.backendRestartsSource = () => pick(this.fleet.current(), (f) => f.restarts);
    this.refusals = new HeartbeatRefusals({ logger: this.logger, now: this.now });
    this.metrics.refusedHeartbeatsSource = () => this.refusals.current();
  }

  /** Create or renew a backend's lease. Throws RegistryError for refused input or a port conflict. */
  async heartbeat(input: HeartbeatInput): Promise<Backend> {
    return (await this.heartbeatOutcome(input)).backend;
  }

  /** A heartbeat that also tells whether it created the backend: discovery counts only those as heals. */
  heartbeatOutcome(input: HeartbeatInput): Promise<{ backend: Backend; created: boolean }> {
    const body: Record<string, unknown> = { url: input.url };
    if (input.ttl !== undefined) body.ttl = input.ttl;
    if (input.clientVersion !== undefined) body.clientVersion = input.clientVersion;
    return this.upsert(input.tool, input.id, body, input.source);
  }

  /**
   * A heartbeat as the API receives it: the body is whatever the client sent. A tool token registers only
   * ports its tool holds, or ports of the configured range (which the heartbeat then assigns): a port
   * anywhere else needs the admin token, or the tool could route itself to any free port of the machine.
   */
  async heartbeatRequest(tool: string, id: string, body: unknown, principal: Principal): Promise<Backend> {
    const { backend } = await this.upsert(tool, id, body, 'registered', principal.kind === 'tool');
    this.refusals.accepted(tool);
    return backend;
  }

  /**
   * A heartbeat the API refused for its credentials (401). The tool is kept only once it passes the
   * tool-name validator (a path segment that does not is arbitrary client input), the token only as its id.
   */
  heartbeatRefused(tool: string, authorization: string | undefined, reason: RefusalReason, body: unknown): void {
    let named: string | null = null;
    try {
      named = this.validators.tool(tool);
    } catch {
      named = null;
    }
    this.refusals.refused({ tool: named, tokenId: tokenIdOf(authorization), reason, ttlSeconds: this.askedTtl(body) });
  }

  /** The lease a heartbeat body asks for when it is a valid one, else the default. */
  private askedTtl(body: unknown): number {
    const ttl = body !== null && typeof body === 'object' ? (body as { ttl?: unknown }).ttl : undefined;
    const { minTtlSeconds, maxTtlSeconds, defaultTtlSeconds } = this.config.leases;
    return typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= minTtlSeconds && ttl <= maxTtlSeconds ? ttl : defaultTtlSeconds;
  }

  private async upsert(tool: string, id: string, body: unknown, source: BackendSource, byToolToken = false): Promise<{ backend: Backend; created: boolean }> {
    let result: RegistrationResult = 'rejected';
    let named = false;
    try {
      this.validators.tool(tool);
      this.validators.id(id);
      named = true;
      const hb: HeartbeatBody = this.validators.heartbeatBody(body);
      const target = await this.policy.backendUrl(hb.url);
      const { min, max } = this.config.ports;
      const assignedOnly = byToolToken && (target.port < min || target.port > max);
      const answer = await this.store.upsertBackend({
        tool,
        id,
        url: target.url,
        host: target.host,
        port: target.port,
        ...(target.addresses.length > 1 ? { alsoHosts: target.addresses.slice(1) } : {}),
        ...(assignedOnly ? { assignedOnly } : {}),
        ttl: hb.ttl ?? this.config.leases.defaultTtlSeconds,
        source,
        clientVersion: hb.clientVersion,
        instance: hb.instance,
        restarts: hb.restarts,
        prefix: hb.prefix,
        now: this.now(),
      });
      if (!answer.ok) {
        result = answer.reason === 'not_assigned' ? 'rejected' : 'conflict';
        throw storeRefusal(answer, tool, target, this.config.ports);
      }
      result = answer.created ? 'created' : 'renewed';
      if (answer.created) {
        // A heartbeat of another instance for a stored id (a takeover) is a creation too: its instance says whose.
        this.logger.info({ event: 'registration', result, tool, id, url: target.url, source, ttl: answer.backend.ttl, instance: hb.instance }, 'backend registered');
      } else if (this.logger.isLevelEnabled('debug')) {
        // Renewals are the fleet's steady state (thousands a second): a line each only when asked for.
        this.logger.debug({ event: 'registration', result, tool, id, source, ttl: answer.backend.ttl }, 'lease renewed');
      }
      return { backend: answer.backend, created: answer.created };
    } catch (err) {
      if (err instanceof StoreUnavailableError) result = 'unavailable';
      this.logFailure(result, named ? { tool, id } : {}, source, err);
      throw err;
    } finally {
      this.metrics.registrations.inc({ result });
    }
  }

  /**
   * A refused or failed heartbeat. Tool and id are logged only once they passed validation: a path segment
   * that did not is arbitrary client input. A dead store fails every heartbeat of the fleet; the API logs
   * that once per interval, so each one is only a debug line.
   */
  private logFailure(result: RegistrationResult, who: { tool?: string; id?: string }, source: BackendSource, err: unknown): void {
    const level = result === 'unavailable' ? 'debug' : result === 'conflict' ? 'warn' : 'info';
    if (!this.logger.isLevelEnabled(level)) return;
    const e = err instanceof RegistryError ? { code: err.code, field: err.field } : { code: result, message: (err as Error)?.message };
    this.logger[level]({ event: 'registration.failed', result, ...who, source, error: e }, 'heartbeat refused');
  }

  async deregister(tool: string, id: string): Promise<boolean> {
    const removed = await this.store.removeBackend(this.validators.tool(tool), this.validators.id(id));
    if (removed) this.logger.info({ event: 'deregistration', result: 'removed', tool, id }, 'backend deregistered');
    return removed;
  }

  /**
   * Deregistration by the run that registered: removes the backend only while `instance` still owns it
   * (its last heartbeat carried that instance). A refusal is logged: it is the overlap of two runs of one
   * backend id that this rule exists for.
   */
  async deregisterOwned(tool: string, id: string, instance: unknown): Promise<OwnedRemoval> {
    this.validators.tool(tool);
    this.validators.id(id);
    const own = this.validators.instance(instance);
    const result = await this.store.removeOwnedBackend(tool, id, own);
    if (result === 'removed') this.noteStopped(tool);
    if (result !== 'absent') {
      const message = result === 'removed' ? 'backend deregistered' : 'deregistration refused: another instance holds the backend';
      this.logger.info({ event: 'deregistration', result, tool, id, instance: own }, message);
    }
    return result;
  }

  /** The tool's backends and assignments; null when it has neither. */
  async getTool(tool: string): Promise<ToolEntry | null> {
    this.validators.tool(tool);
    const [backends, assignments] = await Promise.all([this.store.getBackends(tool), this.store.listAssignments()]);
    const own = assignments.filter((a) => a.tool === tool).sort(byHostThenPort);
    if (backends.length === 0 && own.length === 0) return null;
    return { tool, backends: [...backends].sort(byToolThenKey<Backend>((b) => b.id)), assignments: own };
  }

  /** Every tool with a backend or an assignment, from one consistent snapshot, by name. */
  async listTools(): Promise<ToolEntry[]> {
    const snap = await this.store.snapshot();
    const tools = new Map<string, ToolEntry>();
    const entry = (tool: string) => {
      let e = tools.get(tool);
      if (!e) tools.set(tool, (e = { tool, backends: [], assignments: [] }));
      return e;
    };
    for (const b of snap.backends) entry(b.tool).backends.push(b);
    for (const a of snap.assignments) entry(a.tool).assignments.push(a);
    const list = [...tools.values()].sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0));
    for (const e of list) {
      e.backends.sort(byToolThenKey<Backend>((b) => b.id));
      e.assignments.sort(byHostThenPort);
    }
    return list;
  }

  /**
   * Ports are allocated with what this process remembers of the table before the store lost its state
   * (set once the process follows the table; it does so after the registry is built).
   */
  useRecovery(recovery: EpochRecovery): void {
    this.recovery = recovery;
  }

  /**
   * The tool's port on `host`: its existing assignment, or the lowest free port of the range; after the
   * store lost its state, never a port the previous table gave another tool, and the tool's own old port
   * when it is free. A port is never handed out while something listens on it: a new assignment on a port
   * that accepts connections is released again and the next port tried, a bounded number of times.
   */
  async allocatePort(tool: string, host: string): Promise<Assignment> {
    this.validators.tool(tool);
    const { addresses } = await this.policy.hostAddresses(host);
    const key = addresses[0];
    const opts = await this.allocateOptions(tool, addresses);
    const occupied: number[] = [];
    for (let attempt = 0; attempt < OCCUPIED_PORT_ATTEMPTS; attempt++) {
      const answer = await this.store.allocatePort(tool, key, this.config.ports, this.now(), avoiding(opts, occupied));
      if (!answer.ok) {
        const also = occupied.length > 0 ? ` or something listens on it (${occupied.join(', ')})` : '';
        throw new RegistryError(503, 'port_range_exhausted', `every port of ${this.config.ports.min}..${this.config.ports.max} on ${addresses.join(', ')} is assigned${also}`, 'host');
      }
      const { port } = answer.assignment;
      // The tool asking again gets its assignment as before, and after a store loss the port it held in the
      // previous table (its own running server may well be the one listening there).
      if (!answer.created || port === opts.prefer || !(await this.listening(addresses, port))) return answer.assignment;
      await this.releaseNew(answer.assignment, addresses);
      occupied.push(port);
      this.metrics.portsOccupied.inc();
      this.logger.warn({ event: 'port.occupied', host: key, port, tool }, 'something already listens on the port; not handing it out');
    }
    throw new RegistryError(
      503,
      'ports_occupied',
      `something accepts connections on each of the ${occupied.length} free ports tried on ${addresses.join(', ')} (${occupied.join(', ')}); stop what listens there or change ports.min..ports.max`,
      'host',
    );
  }

  /**
   * The allocation constraints on every address of the host: the other addresses, and after a store loss
   * the ports the previous table gave other tools on any of them (the tool's own old port: on the first).
   */
  private async allocateOptions(tool: string, addresses: readonly string[]): Promise<AllocateOptions> {
    const opts: AllocateOptions = addresses.length > 1 ? { alsoHosts: addresses.slice(1) } : {};
    if (!this.recovery) return opts;
    for (const [i, address] of addresses.entries()) {
      const o = await this.recovery.allocateOptions(tool, address);
      if (o.exclude) opts.exclude = [...(opts.exclude ?? []), ...o.exclude];
      if (i === 0 && o.prefer !== undefined) opts.prefer = o.prefer;
    }
    return opts;
  }

  /** Takes back a new assignment found occupied, on each address it was made on just now. */
  private async releaseNew(made: Assignment, addresses: readonly string[]): Promise<void> {
    for (const address of addresses) {
      const a = address === made.host ? made : await this.store.getAssignment(address, made.port);
      if (a && a.tool === made.tool && a.createdAt === made.createdAt) await this.store.releasePort(address, made.port);
    }
  }

  /** Whether something accepts connections on any of the addresses at `port`, within the discovery probe's budget. */
  private async listening(addresses: readonly string[], port: number): Promise<boolean> {
    for (const address of addresses) {
      if (await acceptsConnections(address, port, this.config.discovery.probeBudgetMs)) return true;
    }
    return false;
  }

  async listPorts(): Promise<Assignment[]> {
    return [...(await this.store.listAssignments())].sort(byHostThenPort);
  }

  /** The assignment of host:port, or null. `host` may be spelled in any form canonicalHost accepts. */
  async getAssignment(host: string, port: number): Promise<Assignment | null> {
    return this.store.getAssignment(hostKey(host), this.validators.port(port));
  }

  /**
   * The assignments of `port` on every address `host` stands for: the address itself, or each address a
   * name resolves to (and the name itself, which older registries keyed assignments by).
   */
  async assignmentsAt(host: string, port: number): Promise<Assignment[]> {
    const p = this.validators.port(port);
    const found = await Promise.all((await hostKeys(this.policy, host)).map((k) => this.store.getAssignment(k, p)));
    return found.filter((a): a is Assignment => a !== null);
  }

  /** Releases each of these assignments; answers those released (another caller may have been first). */
  async releaseAssignments(assignments: readonly Assignment[]): Promise<Assignment[]> {
    const released = await Promise.all(assignments.map((a) => this.store.releasePort(a.host, a.port)));
    return released.filter((a): a is Assignment => a !== null);
  }

  /**
   * The assignment keys a backend URL stands on: each address its host stands for (and a name itself).
   * Discovery asks it to know which assignments a registration covers.
   */
  async assignmentKeysOf(url: string): Promise<string[]> {
    const t = originOf(url);
    if (!t) return [];
    return (await hostKeys(this.policy, t.host)).map((h) => assignmentKey(h, t.port));
  }

  /** A new token for the tool. The answer is the only place the token ever appears. */
  async issueToken(tool: string): Promise<{ id: string; tool: string; token: string }> {
    this.validators.tool(tool);
    const { token, record } = this.signer ? generateSignedToken(tool, this.now(), this.signer) : generateToken(tool, this.now());
    await this.store.putToken(record);
    return { id: record.id, tool, token };
  }

  /**
   * Deletes the token's record and records the revocation. The revocation is written even when no record
   * is found: after the store lost its state the record may be gone while the (signed) token still verifies.
   * An id whose record belongs to another tool is that tool's token: it is left alone (404), as it was
   * before revocations were kept, or a mistyped tool name would revoke another tool's token behind a 404.
   */
  async revokeToken(tool: string, id: string): Promise<boolean> {
    this.validators.tool(tool);
    this.validators.tokenId(id);
    const existed = await this.store.revokeToken(tool, id);
    if (!existed) {
      const other = await this.store.getToken(id);
      if (other && other.tool !== tool) throw new RegistryError(404, 'no_such_token', `tool "${tool}" has no token "${id}"`, 'tokenId');
    }
    await this.store.putRevocation({ id, tool, revokedAt: this.now() });
    return existed;
  }

  /** Stored backends per clientVersion ("unknown" when a heartbeat sent none). */
  async clientVersionCounts(): Promise<ReadonlyMap<string, number>> {
    return (await readFleetFigures(this.store)).versions;
  }

  /**
   * Whether a launcher deregistered a backend of `tool` lately: its process is stopping (or restarting), and
   * what still answers on its port for a moment is that process on its way out. Discovery must not route
   * to it; proxies hold the tool's requests for its successor meanwhile (proxy.holdMs).
   */
  stoppedRecently(tool: string): boolean {
    const until = this.stopped.get(tool);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.stopped.delete(tool);
    return false;
  }

  private noteStopped(tool: string): void {
    const now = this.now();
    if (this.stopped.size >= 10_000) for (const [t, until] of this.stopped) if (until <= now) this.stopped.delete(t);
    this.stopped.set(tool, now + Math.max(this.config.proxy.holdMs, this.config.discovery.negativeCacheMs));
  }
}
