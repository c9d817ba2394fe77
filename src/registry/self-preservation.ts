import type { ExpireCandidate } from './types';

export interface SelfPreservationPolicy {
  /** Fraction of the fleet that may lapse within the window before expiry pauses. */
  threshold: number;
  windowSeconds: number;
  /** Below this many backends the guard never engages: small fleets must still evict their dead. */
  minFleet: number;
  /** No lease outlives its last heartbeat by more than this many TTLs, paused or not. */
  hardCapMultiplier: number;
}

export interface ExpiryDecision {
  expire: ExpireCandidate[];
  /** Candidates held back this round: lapsed, kept in the store (the expirer marks them held). */
  held: ExpireCandidate[];
  active: boolean;
}

/**
 * Eureka's self-preservation without its trap. A mass lapse usually means the heartbeats cannot reach us
 * (network split, registry overload, a Redis blip), not that a quarter of the fleet died in the same
 * minute; evicting then would drop live routes. But a guard that never lets go keeps dead instances
 * routed forever, so it ignores small fleets and every lease still dies at the hard cap.
 */
export class SelfPreservation {
  private recent: number[] = [];
  active = false;

  constructor(private readonly policy: SelfPreservationPolicy) {}

  /** `fleetSize` counts every stored backend, the lapsed candidates included. */
  decide(now: number, candidates: ExpireCandidate[], fleetSize: number): ExpiryDecision {
    const windowStart = now - this.policy.windowSeconds * 1000;
    this.recent = this.recent.filter((t) => t > windowStart);
    // The fleet as it was when the window opened: what is left plus what already lapsed in it.
    const fleetAtWindowStart = fleetSize + this.recent.length;
    const lapsing = this.recent.length + candidates.length;
    this.active =
      candidates.length > 0 &&
      fleetAtWindowStart >= this.policy.minFleet &&
      lapsing > this.policy.threshold * fleetAtWindowStart;
    if (!this.active) return { expire: candidates, held: [], active: false };
    const expire: ExpireCandidate[] = [];
    const held: ExpireCandidate[] = [];
    for (const c of candidates) (c.expiresAt + (this.policy.hardCapMultiplier - 1) * c.ttl * 1000 <= now ? expire : held).push(c);
    return { expire, held, active: true };
  }

  /** Counts the expirations that did happen, for the sliding window. */
  record(now: number, count: number): void {
    for (let i = 0; i < count; i++) this.recent.push(now);
  }
}
