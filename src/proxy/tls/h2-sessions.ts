import http2 from 'node:http2';
import type { Logger } from '../../logger';
import type { Http2AbuseReason, Metrics } from '../../metrics';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

export interface SessionLimits {
  /** A session without an open stream for this long is closed (GOAWAY): HTTP/1.1's keep-alive timeout. */
  idleMs: number;
  /** The longest a stream's request (its body) may take to arrive, as HTTP/1.1's requestTimeout. */
  requestMs: number;
  /** Streams the client may cancel before their answer in one second; one more closes the session. */
  maxResetsPerSecond: number;
  /** PING, SETTINGS and PRIORITY frames the client may send in one second; one more closes the session. */
  maxControlFramesPerSecond: number;
}

/** The error a session is destroyed with when the proxy closes it for abuse: its reason, for the log and the metric. */
class SessionAbuse extends Error {
  readonly code = 'ERR_HTTP2_SESSION_ABUSE';
  constructor(readonly reason: Http2AbuseReason) {
    super(`HTTP/2 session closed: ${reason}`);
  }
}

/** What the proxy counts for abuse in one-second windows: one more than `max` in a window is too many. */
class RateWindow {
  private start = 0;
  private count = 0;

  constructor(private readonly max: number) {}

  /** Counts one; true when that makes it too many. */
  exceeded(now: number): boolean {
    if (now - this.start >= 1000) {
      this.start = now;
      this.count = 0;
    }
    return ++this.count > this.max;
  }
}

/**
 * One client's HTTP/2 session as the proxy keeps watch over it. What Node and its HTTP/2 library bound
 * themselves (invalid frames, floods of frames queued for a peer that does not read, CONTINUATION floods,
 * header lists, streams refused) is configured on the server; this adds what they leave open:
 * - a session with no open stream for `idleMs` is closed (one that completes its handshake and sends nothing);
 * - a stream whose request has not all arrived after `requestMs` is reset (a body trickled forever);
 * - streams cancelled before their answer (rapid reset: each cost a backend request for nothing), and PING,
 *   SETTINGS and PRIORITY frames (each answered or worked on, for nothing), past their rate per second,
 *   close the session with GOAWAY ENHANCE_YOUR_CALM.
 */
class WatchedSession {
  private open = 0;
  private abused = false;
  private idle: NodeJS.Timeout | null = null;
  private readonly resets: RateWindow;
  private readonly controlFrames: RateWindow;
  private readonly onControlFrame = (): void => {
    if (this.controlFrames.exceeded(Date.now())) this.abuse('control_frames');
  };

  constructor(
    private readonly session: http2.ServerHttp2Session,
    private readonly limits: SessionLimits,
  ) {
    this.resets = new RateWindow(limits.maxResetsPerSecond);
    this.controlFrames = new RateWindow(limits.maxControlFramesPerSecond);
    this.startIdle();
    session.on('stream', (stream: http2.ServerHttp2Stream) => this.opened(stream));
    session.on('ping', this.onControlFrame);
    session.on('remoteSettings', this.onControlFrame);
    // PRIORITY frames of a stream that is open go to the stream, those of others to the session.
    session.on('priority', this.onControlFrame);
  }

  private opened(stream: http2.ServerHttp2Stream): void {
    this.open++;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    stream.on('priority', this.onControlFrame);
    const request = stream.endAfterHeaders ? null : setTimeout(() => stream.close(NGHTTP2_CANCEL), this.limits.requestMs);
    if (request) stream.once('end', () => clearTimeout(request));
    stream.once('close', () => {
      if (request) clearTimeout(request);
      if (--this.open === 0) this.startIdle();
      if (stream.rstCode !== NGHTTP2_NO_ERROR && !stream.headersSent && this.resets.exceeded(Date.now())) this.abuse('resets');
    });
  }

  private abuse(reason: Http2AbuseReason): void {
    if (this.abused) return;
    this.abused = true;
    // Not from within the frame's own callback: the HTTP/2 library is still reading the client's bytes
    // there, and the session destroyed under it would close the socket before the GOAWAY goes out.
    setImmediate(() => {
      if (!this.session.destroyed) this.session.destroy(new SessionAbuse(reason), NGHTTP2_ENHANCE_YOUR_CALM);
    });
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

/** The abuse an HTTP/2 session error stands for; null for one that is no abuse (the client's connection reset). */
function abuseOf(err: NodeJS.ErrnoException): Http2AbuseReason | null {
  if (err instanceof SessionAbuse) return err.reason;
  if (err.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return 'invalid_frames';
  if (err.code !== 'ERR_HTTP2_ERROR' && err.code !== 'ERR_HTTP2_SESSION_ERROR') return null;
  if (/flood/i.test(err.message)) return 'flood';
  if (/CONTINUATION/.test(err.message)) return 'continuation';
  return 'protocol_error';
}

/** The HTTP/2 sessions of a server: watched while they live, closed gracefully or cut when it drains. */
export class H2Sessions {
  private readonly live = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
  ) {}

  add(session: http2.ServerHttp2Session): void {
    this.live.add(session);
    const watch = new WatchedSession(session, this.limits);
    session.once('close', () => {
      watch.stop();
      this.live.delete(session);
    });
  }

  /** A session ended in error (the server's 'sessionError'): an abuse is logged and counted. */
  failed(err: NodeJS.ErrnoException, session: http2.ServerHttp2Session): void {
    const reason = abuseOf(err);
    if (reason === null) return;
    this.metrics?.proxyHttp2SessionsClosed.labels(reason).inc();
    const remote = (session.socket as { remoteAddress?: string } | undefined)?.remoteAddress;
    this.logger.warn({ event: 'proxy.http2_session_closed', reason, remote, err: err.message }, 'HTTP/2 session closed for abuse');
  }

  /** GOAWAY on every session: no new stream, the open ones finish. */
  closeGracefully(): void {
    for (const s of this.live) if (!s.closed) s.close();
  }

  /** Every session cut, its open streams with it. */
  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }
}
