import type { RouteBackend } from '../table/route-backend';

export interface HealthOptions {
  /** First cool-off after a failure. */
  baseCooloffMs: number;
  /** The cool-off doubles while a backend keeps failing, up to this. */
  maxCooloffMs: number;
}

export const DEFAULT_HEALTH: HealthOptions = { baseCooloffMs: 1000, maxCooloffMs: 30_000 };

interface Entry {
  /** The url that failed: a backend re-registered under the same id at another url starts clean. */
  url: string;
  downUntil: number;
  cooloffMs: number;
}

/**
 * Passive health: what the proxy learned from its own traffic. Keyed by tool/id, never by a position in
 * a list (Hipache marked the wrong backends down when its lists changed). A backend that refused or reset
 * a connection is skipped for a cool-off; once the cool-off ends it is tried again, and a new failure
 * doubles the next cool-off. Any success forgets the failure.
 */
export class PassiveHealth {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: HealthOptions;

  constructor(opts: Partial<HealthOptions> = {}) {
    this.opts = { ...DEFAULT_HEALTH, ...opts };
  }

  isDown(tool: string, backend: RouteBackend, now = Date.now()): boolean {
    if (this.entries.size === 0) return false;
    const e = this.entries.get(`${tool}/${backend.id}`);
    return e !== undefined && e.url === backend.url && now < e.downUntil;
  }

  /** Records a failure; answers the cool-off now in force. */
  markFailure(tool: string, backend: RouteBackend, now = Date.now()): number {
    const key = `${tool}/${backend.id}`;
    const prev = this.entries.get(key);
    const cooloffMs =
      prev && prev.url === backend.url ? Math.min(prev.cooloffMs * 2, this.opts.maxCooloffMs) : Math.min(this.opts.baseCooloffMs, this.opts.maxCooloffMs);
    this.entries.set(key, { url: backend.url, downUntil: now + cooloffMs, cooloffMs });
    if (this.entries.size > 1024) this.prune(now);
    return cooloffMs;
  }

  markSuccess(tool: string, backend: RouteBackend): void {
    if (this.entries.size !== 0) this.entries.delete(`${tool}/${backend.id}`);
  }

  /** Backends currently marked down, for status pages and tests. */
  down(now = Date.now()): Array<{ key: string; downUntil: number; cooloffMs: number }> {
    return [...this.entries].filter(([, e]) => now < e.downUntil).map(([key, e]) => ({ key, downUntil: e.downUntil, cooloffMs: e.cooloffMs }));
  }

  /** Forgets backends that have not failed for a whole maximum cool-off: they are gone or healthy. */
  private prune(now: number): void {
    for (const [key, e] of this.entries) if (now - e.downUntil > this.opts.maxCooloffMs) this.entries.delete(key);
  }
}
