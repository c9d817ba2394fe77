import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger';
import type { RouteBackend } from '../table/route-backend';
import type { RouteSource } from '../table/route-table';
import type { ProxyAccounting } from './accounting';
import { failurePage, lastFailurePage, type Attempts } from './attempts';
import type { BackendSupply, Supply } from './backend-supply';
import { mayRetry, type Balancer } from './balancer';
import { rawErrorResponse, renderError, sendError, wantsJson, type ErrorPageOptions, type ProxyErrorCode } from './error-pages';
import type { ClientSlots, SlotWait } from './client-slots';
import { startExchange, type Exchange } from './exchange';
import { rewriteRequestHeaders, unsupportedTransferCoding } from './forward-headers';
import type { ForwardPolicy } from './forward-policy';
import type { ForwardFailure, Forwarder, RequestBody } from './forward-result';
import type { PassiveHealth } from './health';
import { LandingPage } from './landing-page';
import type { PolicyGate, PolicyRefusal } from './policy-gate';
import { readBody, type BodyLimits, type BodyRead } from './request-body';
import { resolveRoute, type Resolution } from './route-resolution';
import { isH2Request } from './tls/h2-exchange';
import { isWebSocketHandshake } from './websocket-handshake';

/** The parts the proxy's handler is made of (createProxyServer builds them from the config). */
export interface HandlerParts {
  routes: RouteSource;
  domain: string | null;
  /** What the backend is sent besides the request: header rules, Via (and the loops it reveals), a missing Host. */
  policy: ForwardPolicy;
  supply: BackendSupply;
  balancer: Balancer;
  attempts: Attempts;
  forwarder: Forwarder;
  health: PassiveHealth;
  accounting: ProxyAccounting;
  logger: Logger;
  /** W3C trace context: passed on when well-formed, created when absent (config.proxy.traceContext). */
  traceContext: boolean;
  /** How much of a body is read before forwarding, and how long it may go silent. */
  bodies: BodyLimits;
  /** The backend connections each client address holds per tool. */
  slots: ClientSlots;
  /** The operator's policies: bans, maintenance, the tool's own limits. */
  gate: PolicyGate;
  /** `GET /` lists the running tools (proxy.landingPage); null: that request is a 404 like any unknown path. */
  landing: LandingPage | null;
  /** The server is draining: answers say `connection: close`, nothing new is held or upgraded. */
  draining(): boolean;
  /** A response closed while draining: its connection may be idle now. */
  closedWhileDraining(): void;
}

function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * A request line of another HTTP than 1.x that Node's parser lets through (`HTTP/2.0`, `HTTP/0.9`; it refuses
 * the others, see client-error.ts). Forwarded, it would reach the backend as an HTTP/1.1 request it never was.
 * A request that came over HTTP/2 (the TLS port) is not one: it is forwarded as HTTP/1.1, its headers made so.
 */
function otherHttp(req: http.IncomingMessage): boolean {
  return req.httpVersionMajor !== 1 && !isH2Request(req);
}

/** The relay's code for a handshake its backend answered 508: the next proxy of a loop refused it. */
const LOOP_ANSWER = 'NOT_101_508';

/**
 * The page for a failed handshake. One answered anything but 101 is a bad gateway, except a 508: the loop
 * a proxy further on detected is passed back as such, as a plain request's 508 is relayed.
 */
function upgradeFailurePage(backend: RouteBackend, f: ForwardFailure): ProxyErrorCode {
  return f.code === LOOP_ANSWER ? 'loop_detected' : failurePage(backend, f);
}

/** Why an upgrade request is refused before its route is looked up; null: it is not. */
function unfitUpgrade(req: http.IncomingMessage, draining: boolean): ProxyErrorCode | null {
  if (draining) return 'no_routes';
  if (otherHttp(req)) return 'version_not_supported';
  return isWebSocketHandshake(req) ? null : 'bad_request';
}

/**
 * The proxy's hot path, one exchange at a time, in the order it happens: resolve the route (shared by
 * requests and upgrades), pick the backends, forward, answer, account. Every step is a named part of its own
 * file; this class only puts them in order and turns their outcomes into answers.
 */
export class ProxyHandler {
  /** Upgraded (WebSocket) connections, cut when a drain ends. */
  readonly upgraded = new Set<Duplex>();

  constructor(private readonly p: HandlerParts) {}

  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ex = startExchange(req, this.p.traceContext);
    // Every answer sets its own headers when it writes its head (writeHead with a head object alone skips a
    // second copy and validation of every header). Nor is there a set of the responses in flight for the
    // drain: a long-lived Set holding each response promotes it to the old generation, and the GC pauses
    // that follow cost more than the drain saves. Answers started during a drain check `draining` instead.
    if (this.p.draining()) res.setHeader('connection', 'close');
    // The line is written once the response has closed AND handle() is over, whichever comes last. The
    // response of a relayed answer closes first: Node emits 'close' from a nextTick, before the promise
    // continuation in handle() that records the outcome. A client gone mid-request is the same: its
    // 'close' comes before the forwarder's answer.
    let ends = 2;
    const ended = () => {
      if (--ends === 0) this.p.accounting.ended(req, ex, res.headersSent ? res.statusCode : 499);
    };
    // 'close' alone: Node emits it after 'finish' too, so one listener sees every end.
    res.once('close', () => {
      this.p.slots.release(ex);
      ended();
      if (this.p.draining()) this.p.closedWhileDraining();
    });
    this.handle(req, res, ex).then(ended, (err: Error) => {
      try {
        this.internalError(ex, err);
        if (!res.headersSent) this.answer(res, req, ex, 'bad_gateway');
        else res.destroy();
      } finally {
        ended();
      }
    });
  }

  /**
   * CONNECT over HTTP/2: the proxy opens no tunnels, and offers no WebSocket over HTTP/2 (RFC 8441 needs
   * SETTINGS_ENABLE_CONNECT_PROTOCOL, which it does not send): 501 with its page, WebSockets go over HTTP/1.1.
   */
  onConnect(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ex = startExchange(req, this.p.traceContext);
    res.once('close', () => this.p.accounting.ended(req, ex, res.headersSent ? res.statusCode : 499));
    this.answer(res, req, ex, 'connect_refused');
  }

  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const ex = startExchange(req, this.p.traceContext);
    socket.on('error', () => socket.destroy());
    this.upgraded.add(socket);
    let status = 0;
    // As for requests: the line once the socket has closed and the handling is over, whichever is last.
    let ends = 2;
    const ended = () => {
      if (--ends === 0) this.p.accounting.ended(req, ex, status || 499);
    };
    socket.once('close', () => {
      this.upgraded.delete(socket);
      ended();
    });
    const refuse = (code: ProxyErrorCode, words?: PolicyRefusal) => {
      status = refuseUpgrade(req, socket, ex, code, words);
    };
    this.upgrade(req, socket, head, ex, refuse).then(
      (relayed) => {
        if (relayed) status = 101;
        ended();
      },
      (err: Error) => {
        try {
          this.internalError(ex, err);
          socket.destroy();
        } finally {
          ended();
        }
      },
    );
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, ex: Exchange): Promise<void> {
    // 0. What cannot be forwarded as it came, answered unread on a connection then closed: another HTTP
    // than 1.x (505), a body framed in a transfer coding the forwarder cannot send on (gzip, chunked: 501).
    if (otherHttp(req)) return this.refuse(res, req, ex, 'version_not_supported', true);
    if (unsupportedTransferCoding(req)) return this.refuse(res, req, ex, 'not_implemented', true);
    // 1. The route.
    const found = resolveRoute(req, this.p.routes, this.p.domain, ex);
    if (found.kind === 'refused') {
      if (found.page === 'no_such_tool' && this.p.landing && LandingPage.asks(req)) {
        ex.outcome = 'landing';
        return this.p.landing.answer(req, res, ex.requestId);
      }
      // A request whose Host cannot be trusted leaves nothing on its connection worth keeping.
      if (found.page === 'bad_request') res.setHeader('connection', 'close');
      this.countRefusal(found.page);
      return this.answer(res, req, ex, found.page);
    }
    const refused = this.p.gate.admit(req, res, ex, found);
    if (refused) return this.answer(res, req, ex, refused.reason, refused);
    if (found.kind === 'redirect') return redirect(res, ex, found.location);
    // A request that has come through this deployment's proxies too often is going round between them.
    if (this.p.policy.via.loops(req)) return this.refuse(res, req, ex, 'loop_detected', false);
    // 2. Its backends: the table's, a discovered one, or one that comes while the request is held.
    const tool = found.route.tool;
    const supply = this.p.supply.now(found.route) ?? (await this.p.supply.backendsFor(found.route, res, ex));
    if (supply.kind !== 'route') return this.noBackend(res, req, ex, supply);
    rewriteRequestHeaders(req, { requestId: ex.requestId, policy: this.p.policy, tool, byPath: found.byPath });
    // 3. The body: a small one is read whole before a backend connection is taken (a slow upload holds
    // none, and a retry can send it again); a larger one streams (request-body.ts).
    const read = hasBody(req) ? await readBody(req, this.p.bodies) : null;
    if (read && !sendable(read)) return this.bodyNotRead(res, req, ex, read.kind);
    const admitted = read && this.p.gate.admitBody(req, tool, read);
    if (admitted && 'reason' in admitted) return this.answer(res, req, ex, admitted.reason, admitted);
    const body = admitted;
    // 4. A client address holds at most its share of the tool's backend connections (client-slots.ts).
    const slot = this.p.slots.take(tool, req, res, ex);
    const waited = slot === true ? 'taken' : await slot;
    if (waited !== 'taken') return this.noSlot(res, req, ex, body, waited);
    // 5. Forward, with retries where they are safe.
    let last = await this.p.attempts.forward(req, res, ex, supply.route, supply.only, body);
    if (last && ex.hold === undefined && mayRetry(req.method, body?.kind === 'stream', last) && (supply.only || !this.hasLiveBackend(tool))) {
      // The backend tried is gone and the tool has none in the table now (its launcher deregistered it while
      // this request was on its way; or discovery found a process on its way out): nothing of the request
      // was used up, so it is held like any request for a tool without a live backend.
      if (supply.only) this.p.supply.failed(tool, supply.only);
      const later = await this.p.supply.held(tool, res, ex);
      if (later.kind === 'client_gone') return void (ex.outcome = 'client_gone');
      if (later.kind === 'route') last = await this.p.attempts.forward(req, res, ex, later.route, null, body);
    }
    // 6. Answer: relayed already (undefined), or the page of the last failure.
    if (last === undefined) return;
    if (last === null) return this.noBackend(res, req, ex, { kind: 'none' });
    // The rest of a body past the tool's bound is not read to be dropped.
    if (last.kind === 'body_too_large') res.setHeader('connection', 'close');
    this.answer(res, req, ex, ex.notRunning ? 'not_running' : lastFailurePage(last));
  }

  /** Relays an upgrade; true once the backend's 101 reached the client. */
  private async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, ex: Exchange, refuse: (code: ProxyErrorCode, words?: PolicyRefusal) => void): Promise<boolean> {
    // 1. The route.
    const unfit = unfitUpgrade(req, this.p.draining());
    if (unfit) {
      if (unfit === 'version_not_supported') this.p.accounting.countError(unfit);
      refuse(unfit);
      return false;
    }
    const found = resolveRoute(req, this.p.routes, this.p.domain, ex);
    if (found.kind === 'refused') {
      this.countRefusal(found.page);
      refuse(found.page);
      return false;
    }
    if (this.p.policy.via.loops(req)) {
      this.p.accounting.countError('loop_detected');
      refuse('loop_detected');
      return false;
    }
    const refused = this.p.gate.admit(req, socket, ex, found);
    if (refused) {
      refuse(refused.reason, refused);
      return false;
    }
    // 2. A backend (a redirect's tool is upgraded as is: a WebSocket client does not follow a 301).
    const tool = found.route.tool;
    const supply = await this.p.supply.backendsFor(found.route, socket, ex);
    if (supply.kind === 'client_gone') {
      ex.outcome = 'client_gone';
      return false;
    }
    const backend = supply.kind === 'route' ? (supply.only ?? this.p.balancer.pick(supply.route)) : null;
    if (!backend) {
      this.p.accounting.countError('not_running');
      refuse('not_running');
      return false;
    }
    if (socket.destroyed) return false;
    // 3. Relay, once: on a failure the relay has already answered the client socket (through `refuse`).
    const byPath = found.kind === 'redirect' || found.byPath;
    rewriteRequestHeaders(req, { requestId: ex.requestId, policy: this.p.policy, tool, byPath, upgrade: true });
    ex.attempts = 1;
    ex.backend = backend.id;
    const r = await this.p.forwarder.upgrade(req, socket, head, backend, (f) => refuse(upgradeFailurePage(backend, f)));
    if (r.kind === 'ok') {
      ex.outcome = 'ok';
      this.p.health.markSuccess(tool, backend);
      return true;
    }
    if (r.kind === 'client_gone') ex.outcome = 'client_gone';
    this.p.attempts.failed(tool, backend, r, ex);
    return false;
  }

  /**
   * Whether the current table has a live backend for the tool: one deregistered meanwhile does not count,
   * nor one held by self-preservation (its heartbeats stopped: a restart may be under way, as for a tool
   * without a backend).
   */
  private hasLiveBackend(tool: string): boolean {
    const now = this.p.routes.current()?.lookup(tool);
    return now === undefined || now.backends.some((b) => !b.held) || now.assignments.length === 0;
  }

  /** A tool the table cannot route counts as a `no_route` error; a malformed request as none. */
  private countRefusal(page: Extract<Resolution, { kind: 'refused' }>['page']): void {
    if (page !== 'bad_request') this.p.accounting.countError('no_route');
  }

  private noBackend(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, supply: Exclude<Supply, { kind: 'route' }>): void {
    if (supply.kind === 'client_gone') return void (ex.outcome = 'client_gone');
    this.p.accounting.countError('not_running');
    this.answer(res, req, ex, 'not_running');
  }

  /** The body never came whole: the client left, or went silent (408). */
  private bodyNotRead(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, kind: 'idle' | 'client_gone'): void {
    if (kind === 'client_gone') return void (ex.outcome = 'client_gone');
    this.refuse(res, req, ex, 'request_timeout', true);
  }

  /** Over its share after the wait: the 503 page; a body left unread closes the connection rather than being read for nothing. */
  private noSlot(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, body: RequestBody | null, waited: Exclude<SlotWait, 'taken'>): void {
    if (waited === 'client_gone') return void (ex.outcome = 'client_gone');
    this.refuse(res, req, ex, 'too_many_connections', body?.kind === 'stream');
  }

  /** A request refused before it was forwarded: counted as an error of its kind, answered with its page. */
  private refuse(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, code: ProxyErrorCode, close: boolean): void {
    if (close) res.setHeader('connection', 'close');
    this.p.accounting.countError(code);
    this.answer(res, req, ex, code);
  }

  private answer(res: http.ServerResponse, req: http.IncomingMessage, ex: Exchange, code: ProxyErrorCode, policy?: PolicyRefusal): void {
    ex.outcome = code;
    // Draining, or a silent body left unread: the connection carries no other request.
    if ((code === 'request_timeout' || this.p.draining()) && !res.headersSent) res.setHeader('connection', 'close');
    // A body left part-read (paused where it outgrew the buffer) would stall its connection: the rest is
    // read and dropped, as Node does with a body never touched.
    if (!req.complete) req.resume();
    sendError(res, renderError(code, { tool: ex.tool, requestId: ex.requestId, json: wantsJson(req.headers.accept), message: policy?.message, retryAfter: policy?.retryAfter }));
  }

  private internalError(ex: Exchange, err: Error): void {
    this.p.logger.error({ event: 'proxy.internal_error', requestId: ex.requestId, err: err.message, stack: err.stack }, 'proxy internal error');
  }
}

function sendable(read: BodyRead): read is RequestBody {
  return read.kind === 'whole' || read.kind === 'stream';
}

function redirect(res: http.ServerResponse, ex: Exchange, location: string): void {
  ex.outcome = 'redirect';
  res.writeHead(301, { location, 'content-length': '0', 'x-request-id': ex.requestId });
  res.end();
}

/** Answers a refused upgrade on the raw socket; the status it answered. */
export function refuseUpgrade(req: http.IncomingMessage, socket: Duplex, ex: Exchange, code: ProxyErrorCode, words?: Pick<ErrorPageOptions, 'message' | 'retryAfter'>): number {
  ex.outcome = code;
  const page = renderError(code, { tool: ex.tool, requestId: ex.requestId, json: wantsJson(req.headers.accept), message: words?.message, retryAfter: words?.retryAfter });
  if (socket.destroyed) return page.status;
  socket.end(rawErrorResponse(page), () => socket.destroy());
  // A client that never reads its answer must not hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
  return page.status;
}
