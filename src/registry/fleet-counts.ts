import type { Logger } from '../logger';
import type { Store } from './store';

/** Figures about the stored backends that metrics export, from one read of the store. */
export interface FleetFigures {
  /** Stored backends per clientVersion ("unknown" when a heartbeat sent none). */
  versions: ReadonlyMap<string, number>;
  /** Per tool with restarts > 0: the largest `restarts` its backends' last heartbeats reported. */
  restarts: ReadonlyMap<string, number>;
}

const EMPTY: FleetFigures = { versions: new Map(), restarts: new Map() };

export async function readFleetFigures(store: Store): Promise<FleetFigures> {
  const snap = await store.snapshot();
  const versions = new Map<string, number>();
  const restarts = new Map<string, number>();
  for (const b of snap.backends) {
    const v = b.clientVersion ?? 'unknown';
    versions.set(v, (versions.get(v) ?? 0) + 1);
    if (b.restarts) restarts.set(b.tool, Math.max(restarts.get(b.tool) ?? 0, b.restarts));
  }
  return { versions, restarts };
}

/**
 * The figures for a metrics scrape: the cached ones, refreshed in the background once they are older than
 * maxAgeMs, so a scrape never waits on a full read of the store. Only the very first scrape waits for one.
 */
export class CachedFleetFigures {
  private figures: FleetFigures | null = null;
  private at = 0;
  private refresh: Promise<FleetFigures> | null = null;

  constructor(
    private readonly store: Store,
    private readonly maxAgeMs: number,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  current(): FleetFigures | Promise<FleetFigures> {
    const stale = this.now() - this.at >= this.maxAgeMs;
    if (stale && !this.refresh) {
      this.refresh = readFleetFigures(this.store)
        .then((figures) => {
          this.figures = figures;
          this.at = this.now();
          return figures;
        })
        .catch((err: unknown) => {
          this.logger.debug({ event: 'client_versions.not_refreshed', err: (err as Error).message }, 'client version counts not refreshed');
          return this.figures ?? EMPTY;
        })
        .finally(() => {
          this.refresh = null;
        });
    }
    return this.figures ?? this.refresh ?? EMPTY;
  }
}
