import type http from 'node:http';
import type { Writable } from 'node:stream';

/**
 * Times the silences of a client's body while it streams to a backend, as Node's headersTimeout times the
 * head: `onIdle` runs once nothing came for `ms`. Time the body spends waiting on the backend (the pipe
 * paused by backpressure) is not the client's silence and never counts.
 */
export class BodyIdleTimer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly into: Writable,
    ms: number,
    private readonly onIdle: () => void,
  ) {
    if (!req.complete) this.timer = setTimeout(this.check, ms);
  }

  /** A chunk of the body came. */
  touch(): void {
    this.timer?.refresh();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly check = (): void => {
    const req = this.req;
    if (req.complete || this.timer === null) return void (this.timer = null);
    if (req.readableFlowing === false || req.readableLength > 0 || this.into.writableNeedDrain) {
      this.timer.refresh();
      return;
    }
    this.timer = null;
    this.onIdle();
  };
}
