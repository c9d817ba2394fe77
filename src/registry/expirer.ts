import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Leadership } from './leadership';
import { SelfPreservation } from './self-preservation';
import type { Store } from './store';
import type { ExpireCandidate } from './types';

const BATCH = 5000;
const CHECKPOINT = 'expiry';

/**
 * Removes backends whose lease lapsed. Runs only while this process holds the expiry lock, so with
 * several registry processes on one Redis each lapse is acted on once.
 */
export class LeaseExpirer {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private graceUntil = 0;
  private storeFailingSince = 0;
  private readonly guard: SelfPreservation;
  /** Expirations done by this process (tests and the status page read it). */
  expiredCount = 0;

  constructor(
    private readonly store: Store,
    private readonly leadership: Leadership,
    private readonly config: Config['leases'],
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.guard = new SelfPreservation(config.selfPreservation);
  }

  get selfPreservationActive(): boolean {
    return this.guard.active;
  }

  get inGrace(): boolean {
    return Date.now() < this.graceUntil;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.running) await new Promise((r) => setTimeout(r, 10));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runOnce().finally(() => this.schedule()), this.config.expiryIntervalMs);
    this.timer.unref();
  }

  /** One expiry round; public so tests can drive it without waiting for the timer. */
  async runOnce(now = Date.now()): Promise<number> {
    if (!this.leadership.isLeader || this.running) return 0;
    this.running = true;
    try {
      return await this.round(now);
    } catch (err) {
      if (!this.storeFailingSince) {
        this.storeFailingSince = now;
        this.logger.warn({ event: 'expiry.store_unreachable', err: (err as Error).message }, 'lease expiry cannot reach the store');
      }
      return 0;
    } finally {
      this.running = false;
    }
  }

  private async round(now: number): Promise<number> {
    const ttlMs = this.config.defaultTtlSeconds * 1000;
    const previous = await this.store.swapCheckpoint(CHECKPOINT, now);
    // Nobody could expire for longer than a TTL (our own store outage, or no leader at all): heartbeats
    // could not land either, so give every lease one TTL to be renewed instead of evicting the fleet.
    const outage = this.storeFailingSince ? now - this.storeFailingSince : previous !== null ? now - previous : 0;
    this.storeFailingSince = 0;
    if (outage > ttlMs) {
      this.graceUntil = now + ttlMs;
      this.logger.warn({ event: 'expiry.grace', outageMs: outage, graceMs: ttlMs }, 'expiry resumes after an outage: leases get a grace period');
    }
    if (now < this.graceUntil) return 0;

    const candidates = await this.store.expiredLeases(now, BATCH);
    if (candidates.length === 0 && !this.guard.active) return 0;
    const fleet = await this.store.backendCount();
    const wasActive = this.guard.active;
    const decision = this.guard.decide(now, candidates, fleet);
    this.metrics.selfPreservationActive.set(decision.active ? 1 : 0);
    if (decision.active !== wasActive) {
      this.logger.warn(
        { event: decision.active ? 'self_preservation.on' : 'self_preservation.off', lapsing: candidates.length, fleet },
        decision.active ? 'self-preservation engaged: too many leases lapsing at once, expiry paused' : 'self-preservation released: expiry resumed',
      );
    }
    if (decision.held.length > 0) await this.markHeld(decision.held);
    if (decision.expire.length === 0) return 0;
    const removed = await this.store.expireLeases(decision.expire);
    this.guard.record(now, removed.length);
    this.expiredCount += removed.length;
    this.metrics.leaseExpirations.inc(removed.length);
    for (const c of removed) {
      this.logger.info({ event: 'lease.expired', tool: c.tool, id: c.id, expiresAt: new Date(c.expiresAt).toISOString() }, 'lease expired');
    }
    return removed.length;
  }

  /**
   * Proxies never see lease times, so without this mark a held backend would count as a live route and its
   * refusals would read as a broken tool (502) rather than a stopped one (503 "not running").
   */
  private async markHeld(held: ExpireCandidate[]): Promise<void> {
    const marked = await this.store.markHeld(held);
    for (const c of marked) {
      this.logger.info(
        { event: 'lease.held', tool: c.tool, id: c.id, expiresAt: new Date(c.expiresAt).toISOString() },
        'lease lapsed but held by self-preservation: routed as held, not live',
      );
    }
  }
}
