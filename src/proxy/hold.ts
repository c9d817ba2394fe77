import type { HOLD_OUTCOMES } from '../metrics';
import type { Route } from '../table/route';
import type { RouteTable } from '../table/route-table';

/** How a hold ended. `overflow`: the tool's queue was full, the request was never held. */
export type HoldOutcome = (typeof HOLD_OUTCOMES)[number];

/** What a hold answers: the tool's route with a backend to forward to, or why there is none. */
export type HoldResult = { outcome: 'forwarded'; route: Route; heldMs: number } | { outcome: Exclude<HoldOutcome, 'forwarded'>; heldMs: number };

/** The route source's table swaps: TableFeed emits 'table' with each new RouteTable. */
export interface TableEvents {
  on(event: 'table', listener: (table: RouteTable) => void): unknown;
  off(event: 'table', listener: (table: RouteTable) => void): unknown;
}

export interface HoldOptions {
  holdMs: number;
  maxPerTool: number;
  /** The table swaps that wake held requests. */
  tables: TableEvents;
  /** Every end of a hold (metrics). */
  onEnd?: (result: HoldResult) => void;
  /** Requests held at this moment, whenever it changes (the gauge). */
  onCount?: (held: number) => void;
  now?: () => number;
}

interface Held {
  started: number;
  deadline: number;
  settle(result: HoldResult): void;
}

interface ToolQueue {
  /** In arrival order, which is deadline order: every hold lasts the same holdMs. */
  held: Set<Held>;
  timer: NodeJS.Timeout | null;
}

/** Whether a client waiting for an answer is still there (a response not yet closed). */
export interface Waiter {
  readonly destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * Requests for tools that have an assignment but no live backend, held until a backend appears in the route
 * table (a launcher restarting its child, a backend discovered) or the hold ends. One listener on the
 * table swaps serves every held request, and one timer per tool's queue ends the holds in order: a
 * request costs an entry in a Set and a 'close' listener, nothing per request on the clock.
 */
export class HoldQueues {
  private readonly queues = new Map<string, ToolQueue>();
  private count = 0;
  private readonly now: () => number;
  private readonly onTable = (table: RouteTable) => this.wake(table);
  private listening = false;

  constructor(private readonly opts: HoldOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Requests held right now, over all tools. */
  get held(): number {
    return this.count;
  }

  /**
   * Holds until the tool has a backend in the table (`forwarded`, with the route), the hold ends
   * (`timeout`), the client leaves (`client_gone`), or at once when the tool already has holdMaxPerTool
   * requests waiting (`overflow`).
   */
  wait(tool: string, client: Waiter): Promise<HoldResult> {
    let q = this.queues.get(tool);
    if (q && q.held.size >= this.opts.maxPerTool) return Promise.resolve(this.end({ outcome: 'overflow', heldMs: 0 }));
    if (client.destroyed) return Promise.resolve(this.end({ outcome: 'client_gone', heldMs: 0 }));
    if (!q) {
      q = { held: new Set(), timer: null };
      this.queues.set(tool, q);
    }
    const queue = q;
    const started = this.now();
    return new Promise<HoldResult>((resolve) => {
      const gone = () => entry.settle({ outcome: 'client_gone', heldMs: this.now() - started });
      const entry: Held = {
        started,
        deadline: started + this.opts.holdMs,
        settle: (result) => {
          if (!queue.held.delete(entry)) return;
          client.off('close', gone);
          this.changed(-1);
          this.dropIfEmpty(tool, queue);
          resolve(this.end(result));
        },
      };
      queue.held.add(entry);
      client.once('close', gone);
      this.changed(+1);
      if (!queue.timer) this.arm(tool, queue);
    });
  }

  /** Ends every hold as a timeout (the proxy is closing). */
  releaseAll(): void {
    for (const q of [...this.queues.values()]) for (const h of [...q.held]) h.settle({ outcome: 'timeout', heldMs: this.now() - h.started });
  }

  private end(result: HoldResult): HoldResult {
    this.opts.onEnd?.(result);
    return result;
  }

  private changed(by: number): void {
    this.count += by;
    // Listening only while something is held: a table swap costs nothing otherwise.
    if (this.count > 0 && !this.listening) {
      this.opts.tables.on('table', this.onTable);
      this.listening = true;
    } else if (this.count === 0 && this.listening) {
      this.opts.tables.off('table', this.onTable);
      this.listening = false;
    }
    this.opts.onCount?.(this.count);
  }

  /** The queue's timer, for its oldest request's deadline. */
  private arm(tool: string, q: ToolQueue): void {
    const first = q.held.values().next();
    if (first.done) return;
    q.timer = setTimeout(() => this.expire(tool, q), Math.max(0, first.value.deadline - this.now()));
  }

  private expire(tool: string, q: ToolQueue): void {
    q.timer = null;
    const now = this.now();
    for (const h of [...q.held]) {
      if (h.deadline > now) break;
      h.settle({ outcome: 'timeout', heldMs: now - h.started });
    }
    if (this.queues.get(tool) === q) this.arm(tool, q);
  }

  private dropIfEmpty(tool: string, q: ToolQueue): void {
    if (q.held.size > 0) return;
    if (q.timer) clearTimeout(q.timer);
    q.timer = null;
    if (this.queues.get(tool) === q) this.queues.delete(tool);
  }

  /**
   * A new table: every held request of a tool that has a live backend now goes on, in arrival order (a
   * backend held by self-preservation is not one: its heartbeats stopped).
   */
  private wake(table: RouteTable): void {
    for (const [tool, q] of [...this.queues]) {
      const route = table.lookup(tool);
      if (!route || !route.backends.some((b) => !b.held)) continue;
      const now = this.now();
      for (const h of [...q.held]) h.settle({ outcome: 'forwarded', route, heldMs: now - h.started });
    }
  }
}
