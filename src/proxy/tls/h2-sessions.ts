import http2 from 'node:http2';
import type { Logger } from '../../logger';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

export interface SessionLimits {
  /** A session without an open stream for this long is closed (GOAWAY): HTTP/1.1's keep-alive timeout. */
  idleMs: number;
  /** Streams the client may cancel before their answer in one second; one more closes the session. */
  maxResetsPerSecond: number;
}

/**
 * One client's HTTP/2 session as the proxy keeps watch over it: closed once it has had no open stream for
 * `idleMs` (a connection that completes its handshake and sends nothing is one), and cut with GOAWAY
 * ENHANCE_YOUR_CALM when it cancels streams faster than `maxResetsPerSecond`: a request opened and reset
 * before its answer costs the proxy a backend request for nothing (rapid reset).
 */
class WatchedSession {
  private open = 0;
  private idle: NodeJS.Timeout | null = null;
  private windowStart = 0;
  private resets = 0;

  constructor(
    private readonly session: http2.ServerHttp2Session,
    private readonly limits: SessionLimits,
    private readonly logger: Logger,
  ) {
    this.startIdle();
    session.on('stream', (stream: http2.ServerHttp2Stream) => this.opened(stream));
  }

  private opened(stream: http2.ServerHttp2Stream): void {
    this.open++;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    stream.once('close', () => {
      if (--this.open === 0) this.startIdle();
      if (stream.rstCode !== NGHTTP2_NO_ERROR && !stream.headersSent) this.countReset();
    });
  }

  private countReset(): void {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.resets = 0;
    }
    if (++this.resets <= this.limits.maxResetsPerSecond || this.session.destroyed) return;
    const socket = this.session.socket as { remoteAddress?: string } | undefined;
    this.logger.warn({ event: 'proxy.http2_session_closed', reason: 'resets', remote: socket?.remoteAddress, limit: this.limits.maxResetsPerSecond }, 'HTTP/2 client reset too many streams: session closed');
    this.session.destroy(new Error('too many streams reset'), NGHTTP2_ENHANCE_YOUR_CALM);
  }

  private startIdle(): void {
    if (this.session.closed || this.session.destroyed) return;
    this.idle = setTimeout(() => this.session.close(), this.limits.idleMs);
    this.idle.unref();
  }

  stop(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }
}

/** The HTTP/2 sessions of a server: watched while they live, closed gracefully or cut when it drains. */
export class H2Sessions {
  private readonly live = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly logger: Logger,
  ) {}

  add(session: http2.ServerHttp2Session): void {
    this.live.add(session);
    const watch = new WatchedSession(session, this.limits, this.logger);
    session.once('close', () => {
      watch.stop();
      this.live.delete(session);
    });
  }

  /** GOAWAY on every session: no new stream, the open ones finish. */
  closeGracefully(): void {
    for (const s of this.live) if (!s.closed) s.close();
  }

  /** Every session cut, its open streams with it. */
  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }

  get size(): number {
    return this.live.size;
  }
}
