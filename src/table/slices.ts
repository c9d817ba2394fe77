import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Long work cut into slices of a bounded number of units (records read, entries walked), with a turn of
 * the event loop between two slices: requests and timers that arrived meanwhile run before the next slice.
 * A full reload of 100,000 routes done in one go held the loop for tens of ms at a time, and every
 * request waiting on the proxy got that delay (bench/reload-tail.ts). Counted in units rather than in
 * time, so a slice costs the same whatever the machine's load, and the number of turns a piece of work
 * gives away is known: one per `unitsPerSlice` units.
 */
export class Slices {
  private done = 0;

  constructor(private readonly unitsPerSlice: number) {}

  /** Counts `units` done; true once a slice is full: the caller then awaits turn() before going on. */
  count(units = 1): boolean {
    this.done += units;
    return this.done >= this.unitsPerSlice;
  }

  /** Resolves on the next turn of the event loop, after the I/O that is waiting; a new slice starts. */
  async turn(): Promise<void> {
    this.done = 0;
    await nextTurn();
  }
}
