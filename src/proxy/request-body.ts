import type http from 'node:http';
import type { Config } from '../config';
import type { RequestBody } from './forward-result';

/** How much of a body is read before forwarding (proxy.bufferBodyBytes), and how long it may go silent. */
export type BodyLimits = Pick<Config['proxy'], 'bufferBodyBytes' | 'bodyIdleTimeoutMs'>;

/** How reading a body before forwarding ended: the body to send, or why there is none. */
export type BodyRead =
  | RequestBody
  /** The client went silent for the idle timeout before its body was whole: nothing was forwarded. */
  | { kind: 'idle' }
  | { kind: 'client_gone' };

const STREAM: RequestBody = { kind: 'stream' };

/**
 * Reads a request's body whole when it fits in bufferBodyBytes, before a backend connection is taken
 * (nginx's request buffering): a client dripping its upload holds no backend connection while it does, and
 * the body can be sent again on a retry. A body declared larger, or a chunked one that grows past the size,
 * is streamed as it comes (what was read of it goes back to the front of the request); bodyIdleTimeoutMs is
 * the longest silence between two reads. Only called for a request with a body.
 */
export function readBody(req: http.IncomingMessage, limits: BodyLimits): Promise<BodyRead> {
  const maxBytes = limits.bufferBodyBytes;
  const declared = req.headers['content-length'];
  if (maxBytes === 0 || (declared !== undefined && Number(declared) > maxBytes)) return Promise.resolve(STREAM);
  return new Promise((resolve) => new BodyReader(req, maxBytes, limits.bodyIdleTimeoutMs, resolve));
}

/** One body being read into memory. A class rather than closures: one object a request. */
class BodyReader {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onEnd = (): void => this.finish(this.chunks.length === 1 ? { kind: 'whole', bytes: this.chunks[0] } : { kind: 'whole', bytes: Buffer.concat(this.chunks, this.bytes) });
  private readonly onGone = (): void => this.finish({ kind: 'client_gone' });

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly maxBytes: number,
    idleMs: number,
    private readonly resolve: (r: BodyRead) => void,
  ) {
    this.timer = setTimeout(() => this.finish({ kind: 'idle' }), idleMs);
    req.on('data', this.onData);
    req.once('end', this.onEnd);
    // 'close' before 'end': the client left mid-body.
    req.once('close', this.onGone);
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes <= this.maxBytes) return void this.timer.refresh();
    // Past the buffer: what was read goes back in front of the rest, which streams from here.
    this.req.pause();
    this.req.unshift(this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.bytes));
    this.finish(STREAM);
  }

  private finish(r: BodyRead): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const req = this.req;
    req.off('data', this.onData);
    req.off('end', this.onEnd);
    req.off('close', this.onGone);
    this.resolve(r);
  }
}
