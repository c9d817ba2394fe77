import type { ToolTraffic } from '../client/status-report';

/** Requests answered, and of those the ones answered with a 5xx status, since counting began. */
export interface RequestTotals {
  readonly requests: number;
  readonly serverErrors: number;
}

/**
 * What the control port reads of a proxy's counting (the proxy's TrafficCounters fulfils it; app.ts wires
 * it): totals that only grow, and the same per tool, where a tool may be forgotten and start again at zero.
 */
export interface TrafficSource extends RequestTotals {
  forEachTool(visit: (tool: string, count: RequestTotals) => void): void;
  forget(tool: string): void;
}

/** Ring slots: one reading every tick, so the oldest is WINDOW_TICKS ticks back. */
export const WINDOW_TICKS = 6;
const SLOTS = WINDOW_TICKS + 1;

/** A tool's readings at the ring's ticks. */
interface Readings {
  requests: number[];
  serverErrors: number[];
  tick: number;
}

const zeros = (): number[] => new Array<number>(SLOTS).fill(0);

/** The traffic between two readings of cumulative counts, over `seconds`. */
export function trafficBetween(now: RequestTotals, then: RequestTotals, seconds: number): ToolTraffic {
  // A count below its earlier reading was forgotten and started again: all of it is new.
  const base = now.requests < then.requests ? { requests: 0, serverErrors: 0 } : then;
  const requests = now.requests - base.requests;
  const serverErrors = now.serverErrors - base.serverErrors;
  return { requests, serverErrors, requestsPerSecond: requests / Math.max(seconds, 1), serverErrorRatio: requests > 0 ? serverErrors / requests : null };
}

/**
 * Rates over about the last minute from a proxy's cumulative counters: a reading of every counter at each
 * tick (every ~10 s) goes into a ring of WINDOW_TICKS + 1 slots, and a report compares the counters as they
 * are now with the oldest slot. Nothing happens per request; a tick costs one pass over the tools that had
 * traffic within the window, and a tool idle for a whole window is forgotten (here and by the proxy).
 */
export class TrafficWindow {
  private tick = 0;
  /** When each slot was read; all start at the window's creation, with every count at zero. */
  private readonly at: number[];
  private readonly totals = { requests: zeros(), serverErrors: zeros() };
  private readonly tools = new Map<string, Readings>();

  constructor(
    private readonly source: TrafficSource,
    now: number,
  ) {
    this.at = new Array<number>(SLOTS).fill(now);
  }

  /** Reads every counter into the next slot, which was the oldest. */
  read(now: number): void {
    this.tick++;
    const slot = this.tick % SLOTS;
    this.at[slot] = now;
    this.totals.requests[slot] = this.source.requests;
    this.totals.serverErrors[slot] = this.source.serverErrors;
    const idle: string[] = [];
    this.source.forEachTool((tool, c) => {
      let r = this.tools.get(tool);
      if (!r) this.tools.set(tool, (r = { requests: zeros(), serverErrors: zeros(), tick: 0 }));
      r.requests[slot] = c.requests;
      r.serverErrors[slot] = c.serverErrors;
      r.tick = this.tick;
      if (this.tick >= SLOTS && r.requests.every((n) => n === c.requests)) idle.push(tool);
    });
    for (const [tool, r] of this.tools) if (r.tick !== this.tick) this.tools.delete(tool);
    // Its rate is 0 with or without an entry: the entry is dropped, and a next request starts one at 0.
    for (const tool of idle) {
      this.tools.delete(tool);
      this.source.forget(tool);
    }
  }

  private get oldest(): number {
    return (this.tick + 1) % SLOTS;
  }

  /** Seconds between the oldest slot and `now`: the window the rates are over. */
  seconds(now: number): number {
    return Math.max(0, (now - this.at[this.oldest]) / 1000);
  }

  /** Every request of the window, tools or not. */
  total(now: number): ToolTraffic {
    const o = this.oldest;
    return trafficBetween(this.source, { requests: this.totals.requests[o], serverErrors: this.totals.serverErrors[o] }, this.seconds(now));
  }

  /** Each tool's traffic over the window, by name; a tool without traffic in it is absent (read: zero). */
  perTool(now: number): Map<string, ToolTraffic> {
    const o = this.oldest;
    const seconds = this.seconds(now);
    const out = new Map<string, ToolTraffic>();
    this.source.forEachTool((tool, c) => {
      const r = this.tools.get(tool);
      // No reading yet: the counter began after the last tick, from zero.
      const then = r ? { requests: r.requests[o], serverErrors: r.serverErrors[o] } : { requests: 0, serverErrors: 0 };
      out.set(tool, trafficBetween(c, then, seconds));
    });
    return out;
  }
}

/** A tool that had no request in the window. */
export const NO_TRAFFIC: Readonly<ToolTraffic> = Object.freeze({ requests: 0, serverErrors: 0, requestsPerSecond: 0, serverErrorRatio: null });
