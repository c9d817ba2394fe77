import type { ProbeResult } from './probe';

/** Past this many remembered answers, expired ones are swept out before another is added. */
const SWEEP_AT = 10_000;

/**
 * At most one probe per key in flight, and its answer remembered for a while. Under load a tool that is
 * down would otherwise be probed by every request that finds it missing; with the gate, concurrent callers
 * share one probe and later ones get the remembered answer (and the 503 page) at once.
 *
 * Successes are remembered too: between a discovery and the route table carrying its backend, requests
 * must not probe again.
 */
export class ProbeGate<T> {
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();
  private readonly remembered = new Map<string, { result: ProbeResult; until: number }>();
  /** Probes actually started (tests and benchmarks read it). */
  probes = 0;

  constructor(
    private readonly run: (target: T) => Promise<ProbeResult>,
    private readonly rememberMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  check(key: string, target: T): Promise<ProbeResult> {
    const hit = this.remembered.get(key);
    if (hit) {
      if (hit.until > this.now()) return Promise.resolve(hit.result);
      this.remembered.delete(key);
    }
    const running = this.inFlight.get(key);
    if (running) return running;
    this.probes++;
    const p = this.run(target)
      .catch((err: unknown): ProbeResult => ({ ok: false, reason: (err as Error).message }))
      .then((result) => {
        this.inFlight.delete(key);
        this.remember(key, result);
        return result;
      });
    this.inFlight.set(key, p);
    return p;
  }

  /** Drops what is remembered about a key (the caller learned better, e.g. the backend just failed). */
  forget(key: string): void {
    this.remembered.delete(key);
  }

  private remember(key: string, result: ProbeResult): void {
    if (this.rememberMs <= 0) return;
    const now = this.now();
    if (this.remembered.size >= SWEEP_AT) {
      for (const [k, v] of this.remembered) if (v.until <= now) this.remembered.delete(k);
    }
    this.remembered.set(key, { result, until: now + this.rememberMs });
  }
}
