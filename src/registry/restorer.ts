import type { Logger } from '../logger';
import type { RegistryCopy } from './durable-copy';
import type { Store } from './store';

/** How the restorer hears that the store lost its state: the followed table's feed says so. */
export interface LossSignal {
  on(event: 'state-lost', listener: (loss: { kind: 'epoch' | 'writes' }) => void): unknown;
}

export interface RestorerOptions {
  store: Store;
  /** What to write back after a loss noticed while running (the registry's memory). */
  memory: () => RegistryCopy;
  isLeader: () => boolean;
  /** How long a loss stays worth restoring: the carry-over window, after which the memory no longer holds it. */
  windowMs: number;
  /** Run once the write-back is done: a reconcile round probes the restored assignments and heals what answers. */
  afterRestore: () => Promise<unknown>;
  logger: Logger;
  /** Counted per source ("file" at start, "memory" while running). */
  onRestored?: (source: RestoreSource, counts: RestoreCounts) => void;
  tickMs?: number;
  now?: () => number;
}

export type RestoreSource = 'file' | 'memory';
export interface RestoreCounts {
  assignments: number;
  tokens: number;
  revocations: number;
  policies: number;
}

interface Pending {
  source: RestoreSource;
  /** A new epoch (or a store found empty at start) is restored once; lost writes at one epoch each time. */
  once: boolean;
  /** The store was not readable at start: restore only into a store whose epoch is not the copy's. */
  onlyIfOtherEpoch?: boolean;
  copy: RegistryCopy;
  until: number;
  /** The epoch whose checkpoint this process took: a retry after a failed write-back must not find it taken. */
  claimed?: string;
}

/**
 * Writes the registry's copy back into a store that lost its state, so that a tool without a launcher
 * stays routed and tokens and revocations hold through any number of store restarts. Only the expiry
 * leader writes back; a store loss is restored once per new epoch (a checkpoint in the store says whether
 * another registry did it). Whatever was written after the loss wins: the store creates only what is free.
 */
export class StateRestorer {
  private pending: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: RestorerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** True while a write-back waits or runs: the copy must not be overwritten by the emptied table then. */
  get restoring(): boolean {
    return this.pending !== null || this.running !== null;
  }

  /**
   * At start: a store that has never been written in its epoch (version 0) lost whatever the file holds; a
   * store with history is newer than any file, since the fleet has been writing to it. A store that cannot be
   * read yet is judged when it can: by then heartbeats may have written to it, so what tells a loss is an
   * epoch other than the copy's. Until then the copy is not overwritten (restoring stays true).
   */
  async fromFile(copy: RegistryCopy | null): Promise<void> {
    if (!copy) return;
    let onlyIfOtherEpoch = false;
    try {
      if ((await this.opts.store.version()).version !== 0) return;
    } catch {
      onlyIfOtherEpoch = true;
    }
    this.pending = { source: 'file', once: true, onlyIfOtherEpoch, copy, until: Infinity };
    this.opts.logger.warn(
      { event: 'state.restore_pending', source: 'file', epoch: copy.epoch, assignments: copy.assignments.length, tokens: copy.tokens.length },
      'the store is empty or unreachable: the durable copy will be written back',
    );
  }

  /** Listens for losses noticed by the followed table and writes back the memory of the table before them. */
  watch(signal: LossSignal): void {
    signal.on('state-lost', (loss) => {
      const copy = this.opts.memory();
      this.pending = { source: 'memory', once: loss.kind === 'epoch', copy, until: this.now() + this.opts.windowMs };
      this.opts.logger.warn(
        { event: 'state.restore_pending', source: 'memory', kind: loss.kind, assignments: copy.assignments.length, tokens: copy.tokens.length },
        'the store lost its state: the registry\'s copy will be written back',
      );
    });
  }

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => void this.step().finally(tick), this.opts.tickMs ?? 200);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One attempt: restores when a loss is pending and this process leads. */
  async step(): Promise<void> {
    const p = this.pending;
    if (!p || this.running) return;
    if (this.now() > p.until) {
      this.pending = null;
      this.opts.logger.warn({ event: 'state.restore_expired', source: p.source }, 'no leader restored the copy within the carry-over window');
      return;
    }
    if (!this.opts.isLeader()) return;
    this.running = this.restore(p).finally(() => {
      this.running = null;
    });
    await this.running;
  }

  private async restore(p: Pending): Promise<void> {
    try {
      const { epoch } = await this.opts.store.version();
      if (p.onlyIfOtherEpoch && epoch === p.copy.epoch) {
        if (this.pending === p) this.pending = null;
        return;
      }
      // Once per epoch among all registries: the first to swap the checkpoint writes back, retrying until done.
      if (p.claimed !== epoch) {
        const previous = await this.opts.store.swapCheckpoint(`restore:${epoch}`, this.now());
        if (previous !== null && p.once) {
          if (this.pending === p) this.pending = null;
          return;
        }
        p.claimed = epoch;
      }
      await this.opts.store.restoreCredentials(p.copy.tokens, p.copy.revocations);
      const created = await this.opts.store.restoreAssignments(p.copy.assignments);
      const policies = await this.opts.store.restorePolicies(p.copy.policies ?? []);
      if (this.pending === p) this.pending = null;
      const counts = { assignments: created.length, tokens: p.copy.tokens.length, revocations: p.copy.revocations.length, policies: policies.length };
      this.opts.logger.warn(
        { event: 'state.restored', source: p.source, ...counts, assignmentsInCopy: p.copy.assignments.length },
        'the registry wrote its copy back into the store',
      );
      this.opts.onRestored?.(p.source, counts);
      await this.opts.afterRestore();
    } catch (err) {
      // Kept pending: the next step tries again (the store may be down again).
      this.opts.logger.warn({ event: 'state.restore_failed', source: p.source, err: (err as Error).message }, 'write-back failed; retrying');
    }
  }
}
