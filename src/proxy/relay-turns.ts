/**
 * The answer bodies relayed in one turn of the event loop, bounded so that no stream can fill a turn.
 *
 * A client that reads as fast as loopback allows has every write of the proxy taken at once: 'drain' comes
 * in the same tick and nothing ever waits. libuv then reads a backend socket up to 32 times (2 MiB) in one
 * poll, relayed as it comes, and a few dozen such streams make turns of megabytes that every request of
 * every other tool waits through, two or three times. Here the bytes of long answers (those past their
 * first `allowance`) relayed since the turn began are counted; once they pass `budget`, an exchange past
 * its own `allowance` for the turn yields (pauses its backend) at the end of a read and waits in line. Each turn (a setImmediate, right after the poll) resumes
 * the exchanges waiting longest, as many as the budget has allowances for: each relays what it already
 * holds, then reads again in the next poll. So a turn relays about `budget`, another request waits through
 * short turns, and the streams take turns fairly.
 */
export class RelayTurns {
  /** Bytes relayed since the last turn began. */
  private spent = 0;
  private turn = 0;
  private armed = false;
  /** Exchanges waiting for a turn, oldest first; `head` is the next one (no shifting of a long array). */
  private waiting: RelayShare[] = [];
  private head = 0;
  /**
   * As many as the budget has allowances for (one at least): what a resumed exchange relays in its turn is
   * mostly read in the poll that follows the resume, so it cannot be counted when the turn begins.
   */
  private readonly resumedPerTurn: number;
  private readonly onTurn = (): void => this.nextTurn();

  /**
   * @param budget bytes of long answers relayed in a turn, over every exchange, before those past their allowance yield (0: no bound)
   * @param allowance bytes an exchange relays in a turn before it may have to yield: an answer smaller never waits
   */
  constructor(
    private readonly budget: number,
    private readonly allowance: number,
  ) {
    this.resumedPerTurn = Math.max(1, Math.floor(budget / allowance));
  }

  /** An exchange's account, made when its body starts to flow (null: no bound); `resume` is called when its turn comes. */
  share(resume: () => void): RelayShare | null {
    return this.budget > 0 ? new RelayShare(resume) : null;
  }

  /**
   * `share` relayed `bytes`, which end the data its parser was given when `endsRead`; true: it must pause
   * its backend until its turn, which it now waits for. Paused at the end of a read, it leaves nothing of
   * that read behind; paused inside one, undici puts the rest back on the socket, to be copied and parsed
   * again on resume, so inside a read it yields only past twice its allowance.
   */
  relayed(share: RelayShare, bytes: number, endsRead: boolean): boolean {
    if (share.turn !== this.turn) {
      share.turn = this.turn;
      share.bytes = 0;
    }
    share.bytes += bytes;
    this.spent += bytes;
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.onTurn);
    }
    if (this.spent < this.budget || share.bytes < this.allowance) return false;
    if (!endsRead && share.bytes < 2 * this.allowance) return false;
    this.waiting.push(share);
    return true;
  }

  /** Exchanges waiting for their turn. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  private nextTurn(): void {
    this.armed = false;
    this.turn++;
    this.spent = 0;
    // Of those that waited when the turn began: one that yields again goes to the back of the line.
    const line = this.waiting;
    const end = Math.min(line.length, this.head + this.resumedPerTurn);
    while (this.head < end) line[this.head++].resume();
    if (this.head === line.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > line.length) {
      this.waiting = line.slice(this.head);
      this.head = 0;
    }
    if (this.queued > 0 && !this.armed) {
      this.armed = true;
      setImmediate(this.onTurn);
    }
  }
}

/** One exchange's bytes in the current turn. */
export class RelayShare {
  turn = -1;
  bytes = 0;

  constructor(readonly resume: () => void) {}
}
