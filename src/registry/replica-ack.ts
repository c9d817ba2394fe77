import type Redis from 'ioredis';
import { NotReplicatedError } from './store';

interface PendingWait {
  /** The socket the writes that join this WAIT were answered on. */
  joiners: Array<{ stream: unknown; resolve: (acked: number) => void; reject: (err: unknown) => void }>;
}

/**
 * Writes that answer only once `replicas` replicas acknowledged them (Redis `WAIT`), or fail with
 * NotReplicatedError after `timeoutMs` (the write stays applied on the master).
 *
 * WAIT covers every earlier write of the connection it is sent on, so all writes whose replies arrived
 * in one event-loop turn share one WAIT sent right after that turn (group commit): a replica outage then
 * delays a write by about two WAIT timeouts, instead of queueing one timeout per write behind each other
 * on the connection. The connection must carry nothing but these writes and their WAITs, because a WAIT
 * holds back every later command on its connection until it returns.
 */
export class ReplicaAck {
  private pending: PendingWait | null = null;

  constructor(
    private readonly conn: Redis,
    private readonly replicas: number,
    private readonly timeoutMs: number,
  ) {}

  async write<T>(op: string, write: () => Promise<T>): Promise<T> {
    const result = await write();
    // Only a WAIT sent after this reply arrived covers the write (a script may have been re-sent as EVAL
    // after a NOSCRIPT, later than a WAIT already in flight).
    const acked = await this.join(this.conn.stream);
    if (acked < this.replicas) {
      throw new NotReplicatedError(`${op}: ${acked} of ${this.replicas} replicas acknowledged the write within ${this.timeoutMs} ms`);
    }
    return result;
  }

  private join(stream: unknown): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (!this.pending) {
        const batch: PendingWait = { joiners: [] };
        this.pending = batch;
        setImmediate(() => this.send(batch));
      }
      this.pending.joiners.push({ stream, resolve, reject });
    });
  }

  private send(batch: PendingWait): void {
    if (this.pending === batch) this.pending = null;
    const stream = this.conn.stream;
    this.conn.wait(this.replicas, this.timeoutMs).then(
      (acked) => {
        // A WAIT on a new connection (reconnected since the write) knows nothing of the write and would
        // count every replica: only the writes answered on this very socket are acknowledged by it.
        for (const j of batch.joiners) j.resolve(j.stream === stream ? Number(acked) : 0);
      },
      (err: unknown) => {
        for (const j of batch.joiners) j.reject(err);
      },
    );
  }
}
