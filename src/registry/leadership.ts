import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Logger } from '../logger';
import type { Store } from './store';

/**
 * One registry process at a time holds a named lock in the store and does the singleton work (lease expiry,
 * reconciling). The lock expires by itself, so a holder that dies is replaced within one lock TTL; the
 * holder renews at a third of the TTL so one slow round-trip does not lose it.
 */
export class Leadership extends EventEmitter {
  readonly owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private leader = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** When the lock was last confirmed: leadership is doubted once a full TTL passed without confirmation. */
  private confirmedAt = 0;

  constructor(
    private readonly store: Store,
    private readonly name: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {
    super();
  }

  get isLeader(): boolean {
    return this.leader && Date.now() - this.confirmedAt < this.ttlMs;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let held = false;
    try {
      held = await this.store.acquireLock(this.name, this.owner, this.ttlMs);
      if (held) this.confirmedAt = Date.now();
    } catch {
      // Unreachable store: keep believing only until the lock would have expired anyway.
      held = this.leader && Date.now() - this.confirmedAt < this.ttlMs;
    }
    this.setLeader(held);
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
      this.timer.unref();
    }
  }

  private setLeader(held: boolean): void {
    if (held === this.leader) return;
    this.leader = held;
    this.logger.info({ event: held ? 'leadership.acquired' : 'leadership.lost', lock: this.name, owner: this.owner }, held ? 'became leader' : 'lost leadership');
    this.emit(held ? 'acquired' : 'lost');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leader) {
      this.setLeader(false);
      await this.store.releaseLock(this.name, this.owner).catch(() => undefined);
    }
  }
}
