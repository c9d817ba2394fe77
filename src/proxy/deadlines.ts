import { performance } from 'node:perf_hooks';

/** Something timed by Deadlines: when it is due (performance.now() ms) and what it does once past it. */
export interface Timed {
  due: number;
  expired(): void;
}

/**
 * The deadlines of the exchanges in flight, checked together every `tickMs`. An exchange is timed from
 * its connection to the last byte of its answer, and every piece of the answer pushes its deadline back:
 * with a Node timer each, that was a timer created and cleared per request and a timer-list update per
 * piece. Here pushing a deadline back is a number written, and one interval sweeps them all (as Node's
 * HTTP server checks its own request timeouts). A deadline is seen at most `tickMs` late.
 */
export class Deadlines {
  private readonly timed = new Set<Timed>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(readonly tickMs: number) {}

  /** The sweep's period for timeouts of these lengths: a tenth of the shortest, within 5..100 ms. */
  static tickFor(...timeoutsMs: number[]): number {
    return Math.min(100, Math.max(5, Math.floor(Math.min(...timeoutsMs) / 10)));
  }

  /** Times `t` from now on (its `due` set by the caller); timing it again changes nothing. */
  add(t: Timed): void {
    this.timed.add(t);
    if (this.sweeper) return;
    this.sweeper = setInterval(this.sweep, this.tickMs);
    // The exchanges' own sockets keep the process alive, not their deadlines.
    this.sweeper.unref();
  }

  delete(t: Timed): void {
    this.timed.delete(t);
  }

  get size(): number {
    return this.timed.size;
  }

  private readonly sweep = (): void => {
    if (this.timed.size === 0) {
      clearInterval(this.sweeper!);
      this.sweeper = null;
      return;
    }
    const now = performance.now();
    for (const t of this.timed) {
      if (t.due > now) continue;
      this.timed.delete(t);
      t.expired();
    }
  };
}
