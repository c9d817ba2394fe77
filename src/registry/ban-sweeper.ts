import type { Logger } from '../logger';
import type { BlockRecord } from '../table/policy-records';
import type { Policies } from './policies';

/**
 * Removes expired bans from the store now and then, on the expiry leader only. Proxies stop applying a
 * ban at its expiresAt by themselves; this only keeps expired records from piling up in the store, the
 * table and the lists, so a slow pace does. The bans are read from the table the registry follows.
 */
export class BanSweeper {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly policies: Policies,
    /** The bans of the followed table. */
    private readonly bans: () => Iterable<BlockRecord>,
    private readonly isLeader: () => boolean,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => void this.runOnce().finally(tick), this.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One round; never throws (a store away now is read again next round). */
  async runOnce(): Promise<number> {
    if (!this.isLeader()) return 0;
    try {
      return await this.policies.sweepExpired(this.bans());
    } catch (err) {
      this.logger.debug({ event: 'policy.sweep_failed', err: (err as Error).message }, 'expired bans not swept');
      return 0;
    }
  }
}
