import type http from 'node:http';
import { PassThrough } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { BodyIdleTimer } from './body-idle';
import { responseHeaders } from './forward-headers';
import { guardedConnector } from './guarded-connect';
import { RelayTurns, type RelayShare } from './relay-turns';
import {
  cannotStart,
  classify,
  literalJudge,
  type ForwardFailure,
  type ForwardFailureKind,
  type Forwarder,
  type ForwarderOptions,
  type ForwardResult,
  type RequestBody,
} from './forward-result';
import type { RouteBackend } from '../table/route-backend';
import type { WebSocketRelay } from './websocket-relay';

// The forwarder of plain requests: undici's dispatcher with a handler of ours. WebSocket upgrades go to
// the http-proxy relay (websocket-relay.ts).

type Phase = 'connect' | 'request' | 'response';

/** Set by a pool's 'connect': the request undici writes next, in the same tick, is on a new connection. */
let connectedNow = false;
function onPoolConnect(): void {
  connectedNow = true;
  // Undici writes the first request right after emitting 'connect', synchronously; should none be
  // written (it was aborted while connecting), the mark must not fall to a later request.
  queueMicrotask(clearConnected);
}
function clearConnected(): void {
  connectedNow = false;
}

class AbortedByProxy extends Error {
  override readonly name = 'AbortedByProxy';
  readonly code = 'PROXY_ABORTED';
}
const ABORTED = new AbortedByProxy('aborted by the proxy');
const TRANSFER_ENCODING = 'transfer-encoding';
/**
 * undici frames a body of unknown length as plain chunked and sends no other transfer coding. The server
 * answers `gzip, chunked` 501 before it gets here (unsupportedTransferCoding) and Node's parser refuses a
 * list that does not end in chunked; should such a request come all the same, nothing is sent.
 */
const UNFRAMEABLE: ForwardFailure = { kind: 'bad_request', phase: 'connect', notSent: true, bodyConsumed: false, code: 'UNSUPPORTED_TRANSFER_CODING' };
/**
 * What an answer relays in a turn of the event loop before it may have to yield (relay-turns.ts): a little
 * less than one read of a socket by Node (64 KiB), so that one whole read of a chunked body, its framing
 * left out, is enough. An answer smaller than this never waits for a turn.
 */
const TURN_ALLOWANCE = 60 * 1024;
/** Why the backend's side of an exchange is paused: the client's side is full, or the exchange waits for a turn. */
const WAIT_DRAIN = 1;
const WAIT_TURN = 2;

/**
 * Whether a piece of a body is the end of what undici is parsing: undici hands the body on as views of the
 * data it was given, and each read of a socket by Node is a buffer of its own, exactly as long as the read.
 */
function endsRead(chunk: Buffer): boolean {
  return chunk.byteOffset + chunk.length === chunk.buffer.byteLength;
}

/**
 * One forwarded request: undici's handler, the exchange's timers and the relay to the client's response.
 * A class rather than closures: one object a request instead of a dozen functions.
 */
class UpstreamExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private started = false;
  private relaying = false;
  private newConnection = false;
  private bodyConsumed = false;
  private phase: Phase = 'connect';
  /**
   * A Node timer per exchange, refreshed by each piece of the answer. A shared set of the exchanges in flight
   * swept on an interval was tried instead: with the bin's GC flags its old-generation table holding every
   * young exchange cost more in collections (1.5-2x CPU per request) than the timers it saved.
   */
  private timer: NodeJS.Timeout | null = null;
  private readonly onTimer = (): void => this.timedOut();
  /** The silences of a streamed body, from the moment it flows to the backend. */
  private bodyIdle: BodyIdleTimer | null = null;
  private readonly onClose = (): void => this.clientClosed();
  /** Made the first time the client's side backs up: most answers never need it. */
  private onDrain: (() => void) | null = null;
  /** The streamed body's bytes sent on so far (counted only against a maxBodyBytes). */
  private bodySent = 0;
  /** The answer's body bytes relayed so far. */
  private bodyBytes = 0;
  /** The answer's account in the turns of the event loop (undefined until it is past its allowance; null: no bound). */
  private share: RelayShare | null | undefined = undefined;
  /** WAIT_DRAIN and WAIT_TURN: the backend is resumed once neither holds. */
  private waits = 0;

  constructor(
    private readonly opts: ForwarderOptions,
    private readonly turns: RelayTurns,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly gate: PassThrough | undefined,
    /** The most of a streamed body the backend may be sent; undefined: no bound. */
    private readonly maxBodyBytes: number | undefined,
    private readonly fresh: boolean,
    private readonly resolve: (r: ForwardResult) => void,
    /** The time for the backend to answer, and the longest silence while a body streams. */
    private readonly responseTimeoutMs: number,
  ) {
    res.on('close', this.onClose);
    this.timer = setTimeout(this.onTimer, opts.connectTimeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.newConnection = connectedNow;
    connectedNow = false;
    if (this.settled) {
      // Timed out or the client left while the request waited for a connection.
      controller.abort(ABORTED);
      return;
    }
    this.started = true;
    this.phase = 'request';
    this.restartTimer(this.responseTimeoutMs);
    const gate = this.gate;
    if (gate) {
      // The body is held back until the connection is up: a refused connection has consumed nothing.
      const max = this.maxBodyBytes;
      gate.on('data', (chunk: Buffer) => {
        this.bodyConsumed = true;
        // Once, as the bound is passed: chunks the gate still holds may follow.
        if (max !== undefined && this.bodySent <= max && (this.bodySent += chunk.length) > max) return this.bodyTooLarge();
        this.timer?.refresh();
        this.bodyIdle?.touch();
      });
      this.req.pipe(gate);
      this.bodyIdle = new BodyIdleTimer(this.req, gate, this.opts.bodyIdleTimeoutMs, () => this.bodyWentSilent());
    }
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: http.IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: Node's server speaks its own interim answers to the client
    if (this.settled) {
      controller.abort(ABORTED);
      return;
    }
    this.phase = 'response';
    const out = statusCode <= 599 ? responseHeaders(headers) : null;
    if (!out) {
      this.fail('bad_gateway', 'INVALID_RESPONSE');
      return;
    }
    this.opts.responseHead?.(this.req, out);
    try {
      this.res.writeHead(statusCode, out);
    } catch (err) {
      this.fail('bad_gateway', (err as NodeJS.ErrnoException).code ?? 'INVALID_RESPONSE');
      return;
    }
    this.relaying = true;
    this.settle({ kind: 'ok', status: statusCode });
    // The response timer, running since the connection was up, now times the body's silences.
    this.timer?.refresh();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.timer?.refresh();
    const full = !this.res.write(chunk);
    // An answer joins the turns once it is past its allowance: most never are, and cost one sum.
    this.bodyBytes += chunk.length;
    const yields = this.bodyBytes > TURN_ALLOWANCE && this.takesTurns(chunk);
    if (!full && !yields) return;
    if (this.waits === 0) controller.pause();
    if (yields) this.waits |= WAIT_TURN;
    if (full) {
      this.waits |= WAIT_DRAIN;
      this.res.once('drain', (this.onDrain ??= () => this.unwait(WAIT_DRAIN)));
    }
  }

  /** Counts a piece of a long answer in the turn; true: the answer yields until its next turn. */
  private takesTurns(chunk: Buffer): boolean {
    const share = this.share === undefined ? (this.share = this.turns.share(() => this.unwait(WAIT_TURN))) : this.share;
    return share !== null && this.turns.relayed(share, chunk.length, endsRead(chunk));
  }

  /** One reason to hold the backend back is gone: it is resumed when none is left. */
  private unwait(reason: number): void {
    this.waits &= ~reason;
    if (this.waits === 0 && !this.res.destroyed) this.controller?.resume();
  }

  onResponseEnd(): void {
    this.stopTimers();
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.relaying) {
      // The backend died or went silent mid-body: the client's copy ends cut short too.
      this.stopTimers();
      this.res.destroy();
      return;
    }
    if (this.settled) return;
    if (this.res.destroyed && !this.res.writableFinished) {
      this.fail('client_gone', 'CLIENT_CLOSED');
      return;
    }
    const e = err as NodeJS.ErrnoException;
    this.fail(classify(e), e.code ?? e.message);
  }

  private clientClosed(): void {
    if (this.relaying) {
      if (!this.res.writableFinished) {
        this.stopTimers();
        this.controller?.abort(ABORTED);
      }
      return;
    }
    if (this.res.writableFinished) return;
    // The client went away: abort the upstream request, or it and its socket stay open for nothing.
    this.fail('client_gone', 'CLIENT_CLOSED');
  }

  /**
   * The client's body passed the tool's maxBodyBytes: 413 while no answer has started (the upstream request
   * is aborted, so the backend never sees a whole request), else the exchange is cut.
   */
  private bodyTooLarge(): void {
    if (this.settled && !this.relaying) return;
    this.opts.bodyTooLarge?.();
    if (!this.relaying) return this.fail('body_too_large', 'BODY_TOO_LARGE');
    this.cutAnswer();
  }

  /**
   * The client stopped sending its body: 408 while no answer has started (the upstream request is
   * aborted), else the exchange is cut, as when the backend goes silent mid-answer.
   */
  private bodyWentSilent(): void {
    this.opts.bodyTimedOut?.();
    if (!this.relaying) return this.fail('client_timeout', 'BODY_IDLE_TIMEOUT');
    this.cutAnswer();
  }

  private timedOut(): void {
    this.timer = null;
    // Streaming went silent: the client gets a truncated body rather than a hang.
    if (this.relaying) return this.cutAnswer();
    this.fail('timeout', this.phase === 'connect' ? 'CONNECT_TIMEOUT' : 'RESPONSE_TIMEOUT');
  }

  /** An answer already on its way cannot change its status: the upstream request is aborted and the client's copy ends cut short. */
  private cutAnswer(): void {
    this.stopTimers();
    this.controller?.abort(ABORTED);
    this.res.destroy();
  }

  private restartTimer(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimer, ms);
  }

  /** The exchange is over, or its answer cut: neither the backend's silences nor the body's are timed. */
  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.bodyIdle?.stop();
  }

  private settle(r: ForwardResult): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(r);
  }

  private fail(kind: ForwardFailureKind, code: string): void {
    if (this.settled) return;
    this.stopTimers();
    this.res.off('close', this.onClose);
    if (this.gate) this.req.unpipe(this.gate);
    const phase = this.phase;
    const stale = kind === 'reset' && phase === 'request' && this.started && !this.newConnection && !this.fresh;
    this.settle({ kind, phase, notSent: !this.started, bodyConsumed: this.bodyConsumed, code, staleConnection: stale });
    // Not yet started: the abort comes in onRequestStart, should the request still get a connection.
    this.controller?.abort(ABORTED);
  }
}

export function createUndiciEngine(opts: ForwarderOptions, relay: WebSocketRelay): Forwarder {
  const connect = guardedConnector(opts.connectTimeoutMs, opts.guard);
  const common = {
    // Our own timers answer 504 (and time a silent upload too, which undici's do not).
    headersTimeout: 0,
    bodyTimeout: 0,
    pipelining: 1,
    connect,
  };
  const pooled = new Agent({
    ...common,
    connections: opts.agent.maxSockets,
    // Idle connections close after this, or sooner when the backend's Keep-Alive header says so; kept
    // below the backends' own keep-alive so we never write on a socket the backend is closing.
    keepAliveTimeout: opts.agent.freeSocketTimeoutMs,
    keepAliveMaxTimeout: opts.agent.freeSocketTimeoutMs,
  });
  // Requests sent with `reset: true` (Connection: close): a connection each, never reused.
  const unpooled = new Agent({ ...common, connections: opts.agent.maxSockets });
  pooled.on('connect', onPoolConnect);
  unpooled.on('connect', onPoolConnect);
  const mayConnect = literalJudge(opts.guard);
  const turns = new RelayTurns(opts.relayBytesPerTurn, TURN_ALLOWANCE);

  function web(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    backend: RouteBackend,
    body: RequestBody | null,
    fresh = false,
    responseTimeoutMs = opts.responseTimeoutMs,
  ): Promise<ForwardResult> {
    const headers = req.headers;
    const te = headers[TRANSFER_ENCODING];
    const early = cannotStart(req, res, mayConnect(backend));
    if (early) return Promise.resolve(early);
    if (te !== undefined && te !== 'chunked') return Promise.resolve(UNFRAMEABLE);
    return new Promise<ForwardResult>((resolve) => {
      if (te !== undefined) delete headers[TRANSFER_ENCODING];
      // Node's server has already answered the client's Expect (100 Continue); undici refuses to send one.
      if (headers.expect !== undefined) delete headers.expect;
      const gate = body?.kind === 'stream' ? new PassThrough() : undefined;
      const exchange = new UpstreamExchange(opts, turns, req, res, gate, body?.kind === 'stream' ? body.maxBytes : undefined, fresh, resolve, responseTimeoutMs);
      const target = backend.target;
      (fresh ? unpooled : pooled).dispatch(
        {
          origin: target.origin,
          path: req.url ?? '/',
          method: req.method ?? 'GET',
          headers,
          body: body?.kind === 'whole' ? body.bytes : (gate ?? null),
          reset: fresh,
        },
        exchange,
      );
    });
  }

  return {
    engine: 'undici',
    web,
    upgrade: relay.upgrade,
    socketCount() {
      let n = relay.socketCount();
      for (const agent of [pooled, unpooled]) {
        for (const s of Object.values(agent.stats)) n += (s as { connected: number }).connected;
      }
      return n;
    },
    close() {
      for (const agent of [pooled, unpooled]) agent.destroy().catch(() => undefined);
      relay.close();
    },
  };
}
