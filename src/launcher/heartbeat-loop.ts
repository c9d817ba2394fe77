import { isTransient, RegistryHttpError, type BackendView, type RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import { Backoff, jittered } from './backoff';
import { failureFields } from './errors';
import { sleep } from './sleep';

export interface LeaseOptions {
  client: RegistryClient;
  tool: string;
  id: string;
  url: string;
  /** Lease length asked for; when absent the registry's default applies and its answer tells the length. */
  ttl?: number;
  /** This run (identity.ts newInstance): sent with every heartbeat, and the deregistration removes only a lease it still owns. */
  instance: string;
  /** `run --restart`: the child's restarts so far, sent with every heartbeat. */
  restarts?: number;
  /** A sub-route of the tool (--prefix): sent with every heartbeat. */
  prefix?: string;
  logger: Logger;
  random?: () => number;
}

const RETRY_BASE_MS = 500;
/** Retry cap before the registry has told the lease length (no --ttl, never answered yet). */
const RETRY_CAP_UNKNOWN_TTL_MS = 10_000;
const HEARTBEAT_JITTER = 0.1;
const DEREGISTER_BUDGET_MS = 5000;

/**
 * Keeps one backend's lease alive: a heartbeat every ttl/3 (jittered), and after a failure retries with
 * capped exponential backoff until the registry answers again. Every heartbeat is a full upsert (PUT), so
 * a lease that was lost meanwhile (expired, store restarted empty) is simply created again by the next one.
 */
export class HeartbeatLoop {
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private stopped = false;
  private attempted = false;
  private failures = 0;
  private registeredAt: string | null = null;
  private intervalMs: number | null;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly log: Logger;
  private ttl: number | undefined;
  /** Undefined once a registry that predates instances refused the field. */
  private instance: string | undefined;
  /** Undefined once a registry that predates the field refused it. */
  private restarts: number | undefined;

  constructor(private readonly opts: LeaseOptions) {
    this.random = opts.random ?? Math.random;
    this.ttl = opts.ttl;
    this.instance = opts.instance;
    this.restarts = opts.restarts;
    this.intervalMs = opts.ttl !== undefined ? (opts.ttl * 1000) / 3 : null;
    this.backoff = new Backoff(RETRY_BASE_MS, this.intervalMs ?? RETRY_CAP_UNKNOWN_TTL_MS, this.random);
    this.log = opts.logger;
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.inflight = this.beat().finally(() => {
        this.inflight = null;
      });
    }, ms);
  }

  private async beat(): Promise<void> {
    const { client, tool, id, url } = this.opts;
    this.attempted = true;
    try {
      const backend = await client.heartbeat(tool, id, url, this.ttl, this.instance, this.restarts, this.opts.prefix);
      this.renewed(backend);
      this.schedule(jittered(this.intervalMs ?? RETRY_CAP_UNKNOWN_TTL_MS, HEARTBEAT_JITTER, this.random));
    } catch (err) {
      if (err instanceof RegistryHttpError && err.status === 400 && err.field === 'ttl' && this.ttl !== undefined) {
        // Outside this registry's configured bounds: a lease of its default length beats no lease at all.
        this.log.error({ event: 'ttl.refused', id, ttl: this.ttl, err: err.message }, 'registry refused the lease length; using its default');
        this.ttl = undefined;
        this.schedule(0);
        return;
      }
      if (err instanceof RegistryHttpError && err.status === 400 && err.field === 'instance' && this.instance !== undefined) {
        // A registry older than instances refuses the unknown field: a lease without ownership beats none.
        this.log.error({ event: 'instance.refused', id, err: err.message }, 'registry refused the instance field; registering without it');
        this.instance = undefined;
        this.schedule(0);
        return;
      }
      if (err instanceof RegistryHttpError && err.status === 400 && err.field === 'restarts' && this.restarts !== undefined) {
        // A registry older than the count refuses the unknown field: the lease matters, the count does not.
        this.log.error({ event: 'restarts.refused', id, err: err.message }, 'registry refused the restarts field; registering without it');
        this.restarts = undefined;
        this.schedule(0);
        return;
      }
      this.failures++;
      const next = this.backoff.next();
      const transient = isTransient(err);
      const fields = { event: 'heartbeat.failed', id, url, attempt: this.failures, retryInMs: next, transient, ...failureFields(err) };
      // A refusal (bad token, invalid url, port conflict) will not fix itself: say so louder, keep trying anyway.
      if (transient) this.log.warn(fields, 'heartbeat failed; retrying');
      else this.log.error(fields, 'registry refused the heartbeat; retrying');
      this.schedule(next);
    }
  }

  private renewed(backend: BackendView): void {
    const { id, url } = this.opts;
    this.intervalMs = (backend.ttl * 1000) / 3;
    this.backoff.setCap(this.intervalMs);
    this.backoff.reset();
    if (this.registeredAt === null || this.failures > 0) {
      this.log.info({ event: 'backend.registered', id, url, ttl: backend.ttl, afterFailures: this.failures }, 'backend registered');
    } else if (backend.registeredAt !== this.registeredAt) {
      // The registry lost the lease between two beats (expiry during a stall, store restarted empty).
      this.log.warn({ event: 'lease.recreated', id, url }, 'lease was lost and has been created again');
    }
    this.registeredAt = backend.registeredAt;
    this.failures = 0;
  }

  /** Stops beating and waits for a beat in flight, so nothing can re-create the lease after this returns. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inflight;
  }

  /**
   * Stops, then removes the backend within a short budget. Skipped when no heartbeat was ever sent: there
   * is nothing of ours to remove (a child that never accepted connections never had a lease started). Only
   * while this run still owns the lease: after another run's heartbeat took it over (an overlapping
   * deploy of the same backend id) the registry refuses, and that run's route stays. When the registry
   * cannot be reached the lease lapses by itself. Answers whether the registry was told (false: it could
   * not be reached within the budget).
   */
  async deregister(budgetMs = DEREGISTER_BUDGET_MS): Promise<boolean> {
    await this.stop();
    if (!this.attempted) return true;
    const { client, tool, id } = this.opts;
    const deadline = Date.now() + budgetMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await client.deregister(tool, id, Math.max(100, deadline - Date.now()), this.instance);
        this.log.info({ event: 'backend.deregistered', id }, 'backend deregistered');
        return true;
      } catch (err) {
        if (err instanceof RegistryHttpError && err.status === 404) {
          this.log.info({ event: 'backend.deregistered', id, alreadyGone: true }, 'backend was already gone');
          return true;
        }
        if (err instanceof RegistryHttpError && err.status === 409 && err.code === 'instance_mismatch') {
          this.log.info({ event: 'deregister.not_owner', id, instance: this.instance }, 'another run holds the backend now; leaving it registered');
          return true;
        }
        const wait = 250 * 2 ** (attempt - 1);
        if (!isTransient(err) || Date.now() + wait >= deadline) {
          this.log.warn({ event: 'deregister.failed', id, attempt, ...failureFields(err) }, 'deregistration failed; the lease will lapse by itself');
          return false;
        }
        await sleep(wait);
      }
    }
  }
}
