import type { StatusSample } from '../client/status-report';
import { trafficBetween, type RequestTotals, type TrafficSource } from './traffic-window';

/** Samples kept: an hour of them at the default interval. */
export const HISTORY_SAMPLES = 120;

/** What a sample reads of the process: its route table and lost tools (when it follows the table). */
export interface TableFigures {
  current(): { routeCount: number } | null;
  lostTools?(): readonly string[];
}

/**
 * The last hour of a few figures the process already has (live routes, lost tools, the proxy's requests
 * per second and 5xx ratio), for the status page's charts: a ring of HISTORY_SAMPLES samples, taken every
 * `sampleMs` by the status source's timer. A sample costs a few reads; nothing is counted for it.
 */
export class StatusHistory {
  private readonly ring: StatusSample[] = [];
  private last: { at: number; totals: RequestTotals } | null = null;

  constructor(
    private readonly table: TableFigures | null,
    private readonly traffic: TrafficSource | null,
    readonly sampleMs: number,
    now: number,
  ) {
    if (traffic) this.last = { at: now, totals: { requests: traffic.requests, serverErrors: traffic.serverErrors } };
  }

  /** The figures as they are at `now`, rates since the last sample: what a sample stores (and the charts' newest point's table figures). */
  figures(now: number): StatusSample {
    const since = this.last;
    const table = this.table?.current() ?? null;
    let requestsPerSecond: number | null = null;
    let serverErrorRatio: number | null = null;
    if (this.traffic && since) {
      const t = trafficBetween(this.traffic, since.totals, (now - since.at) / 1000);
      requestsPerSecond = t.requestsPerSecond;
      serverErrorRatio = t.serverErrorRatio;
    }
    return {
      at: new Date(now).toISOString(),
      routes: table ? table.routeCount : null,
      lostTools: this.table?.lostTools ? this.table.lostTools().length : null,
      requestsPerSecond,
      serverErrorRatio,
    };
  }

  /** Takes a sample: rates are over the time since the one before (or since the history began). */
  sample(now: number): void {
    this.ring.push(this.figures(now));
    if (this.ring.length > HISTORY_SAMPLES) this.ring.shift();
    if (this.traffic) this.last = { at: now, totals: { requests: this.traffic.requests, serverErrors: this.traffic.serverErrors } };
  }

  /** Oldest first. */
  samples(): StatusSample[] {
    return [...this.ring];
  }
}
