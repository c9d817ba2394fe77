import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { ADDRESS_NOT_ALLOWED } from '../net/connect-guard';
import { guardedAgent } from './guarded-connect';
import { classify, literalJudge, noop, type ForwardFailure, type ForwardFailureKind, type Forwarder, type ForwarderOptions, type ForwardResult } from './forward-result';
import type { RouteBackend } from '../table/route-backend';
import { acceptsHandshake } from './websocket-handshake';

// The only module that knows http-proxy: it relays WebSocket upgrades, which undici does not hand over to
// a client socket. Plain requests go through the undici engine.

/** The upgrade half of the Forwarder contract. */
export type WebSocketRelay = Pick<Forwarder, 'upgrade' | 'socketCount' | 'close'>;

type TimedSocket = Duplex & { setTimeout(ms: number): unknown };

type UpgradeListener = (res: http.IncomingMessage, socket: TimedSocket, head: Buffer) => void;

interface AgentInternals {
  addRequest(req: http.ClientRequest, options: unknown): void;
}

/**
 * A slot through which an agent hands over the ClientRequest it is given. http-proxy creates the upstream
 * request inside ws() synchronously but only exposes it later, on its socket; timers and client aborts
 * need it from the start.
 */
interface CaptureSlot {
  fn: ((req: http.ClientRequest) => void) | null;
}

function capturing<A extends http.Agent>(agent: A, slot: CaptureSlot): A {
  const internals = agent as unknown as AgentInternals;
  const addRequest = internals.addRequest;
  internals.addRequest = function (this: A, req: http.ClientRequest, options: unknown) {
    const fn = slot.fn;
    slot.fn = null;
    fn?.(req);
    return addRequest.call(this, req, options);
  };
  return agent;
}

/** One WebSocket handshake and, once upgraded, the two sockets it joined. */
class UpgradeExchange {
  upstream: http.ClientRequest | null = null;
  private settled = false;
  private upgraded = false;
  private connected = false;
  private phase: 'connect' | 'request' | 'response' = 'connect';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: ForwarderOptions,
    private readonly socket: Duplex,
    private readonly onFailure: (r: ForwardFailure) => void,
    private readonly resolve: (r: ForwardResult) => void,
  ) {
    socket.on('error', () => {
      this.fail('client_gone', 'CLIENT_CLOSED');
      socket.destroy();
      this.upstream?.destroy();
    });
    socket.once('close', () => this.fail('client_gone', 'CLIENT_CLOSED'));
  }

  startTimer(): void {
    this.timer = setTimeout(() => this.fail('timeout', 'CONNECT_TIMEOUT'), this.opts.connectTimeoutMs);
  }

  /** Given the upstream request as the agent receives it (CaptureSlot). */
  readonly attach = (cr: http.ClientRequest): void => {
    this.upstream = cr;
    cr.on('socket', (s) => {
      if (s.connecting) s.once('connect', this.onConnect);
      else this.onConnect();
    });
  };

  /** http-proxy's callback: an error of the handshake, or of the upgraded connection's backend side. */
  readonly onError = (err: Error): void => {
    if (this.upgraded) {
      this.socket.destroy();
      return;
    }
    // After a failure the caller's answer may still be on its way out: leave the socket to it.
    if (this.settled) return;
    const e = err as NodeJS.ErrnoException;
    this.fail(classify(e), e.code ?? e.message);
  };

  /**
   * http-proxy pipes an answer other than 101 into the client socket and leaves both open for good, and
   * joins the sockets on any 101. Replaced: an answer other than a 101 that completes the client's
   * WebSocket handshake (a bare 101 would be a raw tunnel to the backend) is answered 502 by the caller,
   * and both ends are closed.
   */
  takeOver(cr: http.ClientRequest, req: http.IncomingMessage): void {
    cr.removeAllListeners('response');
    cr.on('response', (proxyRes: http.IncomingMessage) => {
      proxyRes.destroy();
      this.phase = 'response';
      this.fail('bad_gateway', `NOT_101_${proxyRes.statusCode ?? 0}`);
    });
    const join = cr.listeners('upgrade') as UpgradeListener[];
    cr.removeAllListeners('upgrade');
    cr.on('upgrade', (proxyRes: http.IncomingMessage, proxySocket: TimedSocket, proxyHead: Buffer) => {
      if (!acceptsHandshake(req, proxyRes)) {
        proxySocket.destroy();
        this.phase = 'response';
        return this.fail('bad_gateway', 'NOT_A_WEBSOCKET_HANDSHAKE');
      }
      // http-proxy's own handler writes the 101, pipes the sockets and sets their timeouts to 0; then ours.
      for (const fn of join) fn.call(cr, proxyRes, proxySocket, proxyHead);
      this.joined(proxySocket);
    });
  }

  fail(kind: ForwardFailureKind, code: string): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.upstream?.destroy();
    const r: ForwardFailure = { kind, phase: this.phase, notSent: !this.connected, bodyConsumed: false, code };
    if (!this.socket.destroyed) {
      try {
        this.onFailure(r);
      } catch {
        this.socket.destroy();
      }
    }
    this.resolve(r);
  }

  private readonly onConnect = (): void => {
    this.connected = true;
    this.phase = 'request';
    this.clearTimer();
    if (!this.settled) this.timer = setTimeout(() => this.fail('timeout', 'RESPONSE_TIMEOUT'), this.opts.responseTimeoutMs);
  };

  private joined(proxySocket: TimedSocket): void {
    const socket = this.socket as TimedSocket;
    if (this.settled) {
      proxySocket.destroy();
      socket.destroy();
      return;
    }
    this.settled = true;
    this.upgraded = true;
    this.clearTimer();
    const both = () => {
      socket.destroy();
      proxySocket.destroy();
    };
    proxySocket.on('error', both);
    proxySocket.on('close', both);
    proxySocket.on('timeout', both);
    socket.on('close', both);
    socket.on('timeout', both);
    proxySocket.setTimeout(this.opts.wsIdleTimeoutMs);
    socket.setTimeout(this.opts.wsIdleTimeoutMs);
    this.resolve({ kind: 'ok', status: 101 });
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

export function createWebSocketRelay(opts: ForwarderOptions): WebSocketRelay {
  const slot: CaptureSlot = { fn: null };
  // A new connection per upgrade, never pooled: an upgraded socket leaves the pool, and must stay out of
  // its keep-alive accounting.
  const httpAgent = capturing(guardedAgent(new http.Agent({ keepAlive: false, lookup: opts.guard?.lookup }), opts.guard), slot);
  const httpsAgent = capturing(guardedAgent(new https.Agent({ keepAlive: false, lookup: opts.guard?.lookup }), opts.guard), slot);
  const agents = [httpAgent, httpsAgent];

  const proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, toProxy: true, prependPath: false, changeOrigin: false });
  // Without an 'error' listener http-proxy throws and kills the process; every call below also
  // passes its own callback, so this only catches what slips past them.
  proxy.on('error', noop);
  const mayConnect = literalJudge(opts.guard);

  function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, backend: RouteBackend, onFailure: (r: ForwardFailure) => void): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve) => {
      const ex = new UpgradeExchange(opts, socket, onFailure, resolve);
      if (!mayConnect(backend)) return ex.fail('refused', ADDRESS_NOT_ALLOWED);
      ex.startTimer();
      slot.fn = ex.attach;
      try {
        const target = backend.target;
        proxy.ws(req, socket, head, { target: target as unknown as httpProxy.ProxyTarget, agent: target.protocol === 'https:' ? httpsAgent : httpAgent }, ex.onError);
      } catch (err) {
        ex.fail('bad_request', (err as NodeJS.ErrnoException).code ?? 'INVALID_REQUEST');
      } finally {
        slot.fn = null;
      }
      if (!ex.upstream) return ex.fail('bad_gateway', 'NO_UPSTREAM_REQUEST');
      ex.takeOver(ex.upstream, req);
      if (socket.destroyed) ex.fail('client_gone', 'CLIENT_CLOSED');
    });
  }

  return {
    upgrade,
    socketCount() {
      let n = 0;
      for (const a of agents) {
        for (const list of Object.values(a.sockets)) n += list?.length ?? 0;
        for (const list of Object.values(a.freeSockets)) n += list?.length ?? 0;
      }
      return n;
    },
    close() {
      for (const a of agents) a.destroy();
      proxy.removeAllListeners();
      proxy.on('error', noop);
    },
  };
}
