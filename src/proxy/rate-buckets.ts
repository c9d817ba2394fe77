import type { RateLimit } from '../table/policy-records';

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

/** Buckets of one tool past which the full ones are dropped (a full bucket is what a new one would be). */
const SWEEP_FROM = 4096;

/**
 * Token buckets per tool and client address (a tool policy's rateLimit), in this proxy process only. A
 * bucket holds up to `burst` tokens and gains `perClientPerSecond` a second; a request takes one. Buckets
 * left full are forgotten when a tool's map grows, so memory follows the clients active within about
 * burst / rate seconds, not every address ever seen.
 */
export class RateBuckets {
  private readonly tools = new Map<string, { buckets: Map<string, Bucket>; sweepAt: number }>();

  /** 0 when the request may go; else the seconds until the client's next token (at least 1). */
  take(tool: string, client: string, limit: RateLimit, now: number): number {
    let t = this.tools.get(tool);
    if (!t) this.tools.set(tool, (t = { buckets: new Map(), sweepAt: SWEEP_FROM }));
    let b = t.buckets.get(client);
    if (!b) {
      if (t.buckets.size >= t.sweepAt) this.sweep(t, limit, now);
      t.buckets.set(client, (b = { tokens: limit.burst, at: now }));
    } else {
      b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.perClientPerSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / limit.perClientPerSecond));
  }

  /** Drops the tool's buckets a request now would find full; the next sweep waits for twice what is left. */
  private sweep(t: { buckets: Map<string, Bucket>; sweepAt: number }, limit: RateLimit, now: number): void {
    for (const [client, b] of t.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * limit.perClientPerSecond >= limit.burst) t.buckets.delete(client);
    }
    t.sweepAt = Math.max(SWEEP_FROM, 2 * t.buckets.size);
  }

  /** Tools without a rate limit now lose their buckets (a policy removed or changed). */
  keepOnly(limited: (tool: string) => boolean): void {
    for (const tool of this.tools.keys()) if (!limited(tool)) this.tools.delete(tool);
  }
}
