import type http from 'node:http';

/**
 * This deployment's `Via` entry (RFC 9110 7.6.3: `1.1 <pseudonym>`), and the loop it reveals. Two proxies
 * whose tools point at each other pass a request back and forth until something times out, each hop a new
 * backend connection and an access-log line; the pseudonym each hop appends lets the next one count how
 * often the request has been through this deployment already and answer 508 instead of forwarding it again.
 */
export class Via {
  /** The entries appended, by the version the request came in (precomputed: one per request otherwise). */
  private readonly v10: string;
  private readonly v11: string;
  private readonly name: string;

  /** `maxVia`: the times a request may already carry the pseudonym (a Switchboard in front of another). */
  constructor(
    pseudonym: string,
    private readonly maxVia: number,
  ) {
    this.v10 = `1.0 ${pseudonym}`;
    this.v11 = `1.1 ${pseudonym}`;
    this.name = pseudonym.toLowerCase();
  }

  /** Whether the request has come through this deployment's proxies more than maxVia times. */
  loops(req: http.IncomingMessage): boolean {
    const via = req.headers.via;
    return via !== undefined && this.count(via) > this.maxVia;
  }

  /** The request's `Via` with this proxy's entry appended (the one header a request's Via lines were joined into). */
  stamped(req: http.IncomingMessage): string {
    const own = req.httpVersionMinor === 0 ? this.v10 : this.v11;
    const via = req.headers.via;
    return via ? `${via}, ${own}` : own;
  }

  /** Entries naming this pseudonym as their received-by (`[protocol/]version received-by [comment]`). */
  private count(via: string): number {
    // Most requests that carry a Via came through another kind of proxy: not one entry to read.
    if (!via.toLowerCase().includes(this.name)) return 0;
    let n = 0;
    for (const entry of via.split(',')) {
      const receivedBy = entry.trim().split(/[ \t]+/)[1];
      if (receivedBy !== undefined && receivedBy.toLowerCase() === this.name) n++;
    }
    return n;
  }
}
