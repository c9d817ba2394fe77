/**
 * Capped exponential backoff with "equal jitter": each delay is drawn from [d/2, d] where d doubles per
 * failure up to the cap. The random half spreads a fleet of launchers that all lost the registry at the
 * same moment; the fixed half keeps one launcher from retrying in a tight loop.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly baseMs: number,
    private capMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The cap may change once the lease length is known (a retry never waits longer than a heartbeat would). */
  setCap(capMs: number): void {
    this.capMs = Math.max(this.baseMs, capMs);
  }

  next(): number {
    const d = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.round(d / 2 + this.random() * (d / 2));
  }

  reset(): void {
    this.failures = 0;
  }
}

/** `ms` moved by up to ±fraction, so heartbeats of launchers started together drift apart. */
export function jittered(ms: number, fraction: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 - fraction + 2 * fraction * random()));
}
