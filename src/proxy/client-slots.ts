import type http from 'node:http';
import type { NetworkSet } from '../net/networks';
import type { Exchange } from './exchange';

/**
 * The address a request comes from: its peer, or, when the peer is a trusted proxy, the nearest address
 * of X-Forwarded-For that is not one (the client the first trusted proxy saw). Behind a front proxy every
 * request has the proxy's address as its peer: counted by peer, the front proxy would be one client.
 */
export function clientAddress(req: http.IncomingMessage, trusted: NetworkSet): string {
  const peer = req.socket.remoteAddress ?? '';
  if (trusted.ranges.length === 0 || !trusted.has(peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  if (typeof xff !== 'string') return peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i].trim();
    if (hop !== '' && !trusted.has(hop)) return hop;
  }
  return hops[0].trim() || peer;
}

/** How a wait for a slot ended. */
export type SlotWait = 'taken' | 'full' | 'client_gone';

/** A request waiting for a slot of its client's to be given back. */
interface Waiter {
  ex: Exchange;
  done: (outcome: SlotWait) => void;
}

/** One client address's slots at one tool: how many it holds, and its requests waiting for one. */
export class ClientShare {
  held = 0;
  waiting: Waiter[] | null = null;
}

/** A tool's shares are swept of idle ones when there are this many, or twice as many as the last sweep left. */
const SWEEP_AT = 1024;

/**
 * The backend connections each client address holds per tool (proxy.maxConnectionsPerClient; 0: no cap).
 * A request takes a slot before it is forwarded (`ex.slot`) and gives it back when its response closes
 * (`release`, from the handler's own 'close' listener: no listener of its own a request), which is when its
 * backend connection goes back to the pool. So one address cannot take all of a tool's connections
 * (proxy.agent.maxSockets) and leave its other clients waiting for one. A request past its client's share
 * waits for one of that client's own slots, in turn, for up to `waitMs` (a burst is served, only later),
 * and then gets the 503 page with Retry-After; it never takes a connection another client could use.
 */
export class ClientSlots {
  /**
   * Shares by tool, then client address: both strings the request already has (no key is built), and a
   * share stays when it is back to 0, since a Map entry deleted and set again for every request costs
   * more than the request's whole lookup; idle shares are swept when a tool has many.
   */
  private readonly tools = new Map<string, { shares: Map<string, ClientShare>; sweepAt: number }>();

  constructor(
    private readonly max: number,
    private readonly waitMs: number,
    private readonly trusted: NetworkSet,
  ) {}

  /**
   * Takes a slot for the request's client at `tool`, noted in `ex.slot` until `release(ex)`: at once (true),
   * or after a wait (its outcome).
   */
  take(tool: string, req: http.IncomingMessage, res: http.ServerResponse, ex: Exchange): true | Promise<SlotWait> {
    if (this.max === 0) return true;
    const share = this.shareOf(tool, clientAddress(req, this.trusted));
    if (share.held >= this.max) return this.wait(share, res, ex);
    share.held++;
    ex.slot = share;
    return true;
  }

  /** The request's response closed: its slot, if it holds one, goes to its client's next waiting request, else back. */
  release(ex: Exchange): void {
    const share = ex.slot;
    if (share === undefined) return;
    ex.slot = undefined;
    const next = share.waiting?.[0];
    if (!next) return void share.held--;
    next.ex.slot = share;
    next.done('taken');
  }

  private shareOf(tool: string, client: string): ClientShare {
    let t = this.tools.get(tool);
    if (!t) this.tools.set(tool, (t = { shares: new Map(), sweepAt: SWEEP_AT }));
    let share = t.shares.get(client);
    if (share) return share;
    if (t.shares.size >= t.sweepAt) {
      for (const [c, s] of t.shares) if (s.held === 0 && s.waiting === null) t.shares.delete(c);
      t.sweepAt = Math.max(SWEEP_AT, 2 * t.shares.size);
    }
    t.shares.set(client, (share = new ClientShare()));
    return share;
  }

  private wait(share: ClientShare, res: http.ServerResponse, ex: Exchange): Promise<SlotWait> {
    return new Promise<SlotWait>((resolve) => {
      const timer = setTimeout(() => done('full'), this.waitMs);
      const onClose = () => done('client_gone');
      const w: Waiter = { ex, done };
      function done(outcome: SlotWait): void {
        clearTimeout(timer);
        res.off('close', onClose);
        const queue = share.waiting ?? [];
        const i = queue.indexOf(w);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0) share.waiting = null;
        resolve(outcome);
      }
      (share.waiting ??= []).push(w);
      res.once('close', onClose);
    });
  }
}
