import type pino from 'pino';

type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * A log destination that hands all the lines of one event-loop turn to sonic-boom as a single write.
 * sonic-boom appends each line to its pending buffer and measures that whole buffer again
 * (Buffer.byteLength) on every write: with the access log on, that copy of up to 4 KiB per line cost
 * 6.2-7.0 us a line against 3.8-5.5 us batched (300,000 lines, 64 per turn). Joined here, it measures once
 * per turn.
 */
export class TurnBatchedDestination {
  private readonly lines: string[] = [];
  private scheduled = false;

  /**
   * @param buffers the destination is a sonic-boom in `contentMode: 'buffer'`: it is handed one Buffer a
   *   turn and keeps the lengths of what it holds, where in its text mode it measured its whole pending
   *   string (up to maxWrite) again on every write.
   */
  constructor(
    private readonly dest: SonicBoom,
    private readonly buffers = false,
  ) {
    // A process.exit() right after a log line (a failed start) must not lose the lines of this turn:
    // pino flushes its sonic-boom at exit, but knows nothing of the lines still held here.
    process.once('exit', () => {
      try {
        this.flushSync();
      } catch {
        // stdout is gone: nothing left to write to.
      }
    });
  }

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
    return true;
  }

  /** Hands the pending lines over, then flushes sonic-boom (logger.flush() ends up here). */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.dest.flush(cb);
  }

  /** Writes everything out before returning (process exit). */
  flushSync(): void {
    this.handOver();
    this.dest.flushSync();
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    this.handOver();
  };

  private handOver(): void {
    const n = this.lines.length;
    if (n === 0) return;
    const chunk = n === 1 ? this.lines[0] : this.lines.join('');
    this.lines.length = 0;
    if (this.buffers) (this.dest as unknown as { write(b: Buffer): boolean }).write(Buffer.from(chunk));
    else this.dest.write(chunk);
  }
}
