import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import httpProxy from 'http-proxy';
import { ADDRESS_NOT_ALLOWED } from '../net/connect-guard';
import { responseHeaders } from './forward-headers';
import { guardedAgent } from './guarded-connect';
import { cannotStart, classify, literalJudge, noop, type ForwardFailure, type ForwardFailureKind, type Forwarder, type ForwarderOptions, type ForwardResult } from './forward-result';
import type { BackendTarget, RouteBackend } from '../table/route-table';

// The only module that knows http-proxy: the engine of proxy.engine "http-proxy", and of every WebSocket
// upgrade whatever the engine.

/** What http-proxy's "stream" web pass is given by proxy.web() once the options are merged. */
interface StreamOptions {
  target: BackendTarget;
  agent: http.Agent;
  buffer: PassThrough | undefined;
  selfHandleResponse: true;
  toProxy: true;
  prependPath: false;
  changeOrigin: false;
}

type StreamPass = ((req: http.IncomingMessage, res: http.ServerResponse, options: StreamOptions, head: undefined, server: httpProxy, callback: (err: Error) => void) => unknown) & {
  name: string;
};

function streamPassOf(proxy: httpProxy): StreamPass {
  const found = (proxy as unknown as { webPasses: StreamPass[] }).webPasses.find((p) => p.name === 'stream');
  if (!found) throw new Error('http-proxy: no "stream" web pass');
  return found;
}

interface AgentInternals {
  addRequest(req: http.ClientRequest, options: unknown): void;
}

/**
 * A slot through which an agent hands over the ClientRequest it is given. http-proxy creates the upstream
 * request inside web()/ws() synchronously but only exposes it later, on its socket (and never for requests
 * with `Expect`); timers and client aborts need it from the start.
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

export function createHttpProxyEngine(opts: ForwarderOptions): Forwarder {
  const slot: CaptureSlot = { fn: null };
  const agentOpts: http.AgentOptions = {
    keepAlive: true,
    maxSockets: opts.agent.maxSockets,
    maxFreeSockets: opts.agent.maxFreeSockets,
    // Node's agent applies `timeout` to idle pooled sockets: keep it below the backends' keep-alive so we
    // never write on a socket the backend is closing.
    timeout: opts.agent.freeSocketTimeoutMs,
    // No `scheduling`: Node's default is already 'lifo' (the surplus sockets of a burst idle out instead of
    // being kept warm), and every key here is copied into each request's options by the agent.
    lookup: opts.guard?.lookup,
  };
  const httpAgent = capturing(guardedAgent(new http.Agent(agentOpts), opts.guard), slot);
  const httpsAgent = capturing(guardedAgent(new https.Agent(agentOpts), opts.guard), slot);
  // A new connection per request, never pooled: upgraded sockets (they leave the pool, and must stay out of
  // its keep-alive accounting) and the retry of a request whose pooled connection turned out closed.
  const unpooledHttpAgent = capturing(guardedAgent(new http.Agent({ keepAlive: false, lookup: opts.guard?.lookup }), opts.guard), slot);
  const unpooledHttpsAgent = capturing(guardedAgent(new https.Agent({ keepAlive: false, lookup: opts.guard?.lookup }), opts.guard), slot);
  const agents = [httpAgent, httpsAgent, unpooledHttpAgent, unpooledHttpsAgent];

  const proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, toProxy: true, prependPath: false, changeOrigin: false });
  // Without an 'error' listener http-proxy throws and kills the process; every call below also
  // passes its own callback, so this only catches what slips past them.
  proxy.on('error', noop);
  // Of the web passes only the one that streams is run. `deleteLength` rewrites a chunked DELETE/OPTIONS to
  // Content-Length 0 and then still streams its body: the backend connection would read the body as the
  // next request. `timeout` and `XHeaders` are replaced by our own timers and headers. The pass is called
  // directly: proxy.web() would copy the server's and the request's options into a new object on every
  // request (two util._extend calls through a deprecation wrapper, an arguments copy, a closure).
  const streamPass = streamPassOf(proxy);

  const mayConnect = literalJudge(opts.guard);

  /** `fresh`: on a new connection rather than a pooled one (the retry after a stale pooled connection). */
  function web(req: http.IncomingMessage, res: http.ServerResponse, backend: RouteBackend, hasBody: boolean, fresh = false): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve) => {
      let settled = false;
      let upstream: http.ClientRequest | null = null;
      let connected = false;
      let bodyConsumed = false;
      let phase: 'connect' | 'request' | 'response' = 'connect';
      let timedOut = false;
      let timer: NodeJS.Timeout | null = null;
      /** Set once the answer streams: what a close of the client's response then has to undo. */
      let relayDone: ((cut: boolean) => void) | null = null;
      // A body is held back until the backend connection is up: a refused connection then has consumed
      // nothing, and the request can go to another backend whatever its method.
      const gate = hasBody ? new PassThrough() : undefined;

      const clearTimer = () => {
        if (timer) clearTimeout(timer);
        timer = null;
      };
      const startTimer = (ms: number) => {
        clearTimer();
        timer = setTimeout(onTimeout, ms);
      };

      const settle = (r: ForwardResult) => {
        if (settled) return;
        settled = true;
        resolve(r);
      };

      const fail = (kind: ForwardFailureKind, code: string) => {
        if (settled) return;
        clearTimer();
        res.off('close', onClientClose);
        if (gate) req.unpipe(gate);
        upstream?.destroy();
        const stale = kind === 'reset' && phase === 'request' && (upstream as http.ClientRequest | null)?.reusedSocket === true;
        settle({ kind, phase, notSent: !connected, bodyConsumed, code, staleConnection: stale });
      };

      function onTimeout() {
        timer = null;
        if (!settled) {
          timedOut = true;
          fail('timeout', phase === 'connect' ? 'CONNECT_TIMEOUT' : 'RESPONSE_TIMEOUT');
        } else {
          // Streaming went silent: the client gets a truncated body rather than a hang.
          upstream?.destroy();
        }
      }

      // The one 'close' listener of the response for the whole exchange, relay included: a listener more
      // per phase cost its add and removal on every request (bench/proxy.ts).
      function onClientClose() {
        if (relayDone) {
          relayDone(!res.writableFinished);
          return;
        }
        if (res.writableFinished) return;
        // The client went away: abort the upstream request, or it and its socket stay open for nothing
        // (http-proxy's own `aborted` path no longer fires on Node >= 15.5).
        if (!settled) fail('client_gone', 'CLIENT_CLOSED');
        else upstream?.destroy();
      }

      const onConnect = () => {
        if (settled) return;
        connected = true;
        phase = 'request';
        startTimer(opts.responseTimeoutMs);
        if (gate) {
          gate.on('data', () => {
            bodyConsumed = true;
            timer?.refresh();
          });
          req.pipe(gate);
        }
      };

      const onResponse = (proxyRes: http.IncomingMessage) => {
        if (settled) {
          proxyRes.destroy();
          return;
        }
        phase = 'response';
        const status = proxyRes.statusCode ?? 0;
        const headers = status >= 200 && status <= 599 ? responseHeaders(proxyRes.headers) : null;
        if (!headers) {
          proxyRes.destroy();
          fail('bad_gateway', 'INVALID_RESPONSE');
          return;
        }
        opts.responseHead?.(req, headers);
        try {
          res.writeHead(status, headers);
        } catch (err) {
          proxyRes.destroy();
          fail('bad_gateway', (err as NodeJS.ErrnoException).code ?? 'INVALID_RESPONSE');
          return;
        }
        settle({ kind: 'ok', status });
        // The response timer, running since the connection was up, now times the body's silences.
        if (timer) timer.refresh();
        else startTimer(opts.responseTimeoutMs);
        proxyRes.on('data', () => timer?.refresh());
        // pipe and two listeners, not stream.pipeline: pipeline makes an AbortController per call and
        // aborts it when done, building an AbortError with its stack trace on every request, and its two
        // end-of-stream watchers add a dozen listeners more (bench/proxy.ts).
        let relayed = false;
        const done = (cut: boolean) => {
          if (relayed) return;
          relayed = true;
          clearTimer();
          if (cut) {
            proxyRes.unpipe(res);
            upstream?.destroy();
            res.destroy();
          }
        };
        // The response's 'close' (onClientClose) ends the relay from here on: it follows 'finish', or
        // comes alone when the client went away.
        relayDone = done;
        // Node destroys a response whose connection closed before its end ("aborted"): a backend that
        // died or was cut off by the silence timer. The client's copy must end cut short too.
        proxyRes.on('error', () => done(true));
        proxyRes.once('close', () => {
          if (!proxyRes.complete) done(true);
        });
        proxyRes.pipe(res);
      };

      const attach = (cr: http.ClientRequest) => {
        upstream = cr;
        cr.on('socket', (s) => {
          if (s.connecting) s.once('connect', onConnect);
          else onConnect();
        });
        cr.on('response', onResponse);
      };

      const onError = (err: Error) => {
        if (settled) return;
        if (timedOut) return; // fail() already answered
        if (res.destroyed && !res.writableFinished) {
          fail('client_gone', 'CLIENT_CLOSED');
          return;
        }
        const e = err as NodeJS.ErrnoException;
        fail(classify(e), e.code ?? e.message);
      };

      const early = cannotStart(req, res, mayConnect(backend));
      if (early) {
        settle(early);
        return;
      }
      res.on('close', onClientClose);
      startTimer(opts.connectTimeoutMs);
      slot.fn = attach;
      try {
        const target = backend.target;
        // The options of createProxyServer above, and this request's: what the stream pass reads.
        const options: StreamOptions = {
          target,
          agent: target.protocol === 'https:' ? (fresh ? unpooledHttpsAgent : httpsAgent) : fresh ? unpooledHttpAgent : httpAgent,
          buffer: gate,
          selfHandleResponse: true,
          toProxy: true,
          prependPath: false,
          changeOrigin: false,
        };
        streamPass(req, res, options, undefined, proxy, onError);
      } catch (err) {
        // http.request refused the outgoing request (e.g. a path it will not send): the client's fault.
        fail('bad_request', (err as NodeJS.ErrnoException).code ?? 'INVALID_REQUEST');
      } finally {
        slot.fn = null;
      }
      if (!upstream && !settled) fail('bad_gateway', 'NO_UPSTREAM_REQUEST');
    });
  }

  function upgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    backend: RouteBackend,
    onFailure: (r: ForwardFailure) => void,
  ): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve) => {
      let settled = false;
      let upgraded = false;
      let upstream: http.ClientRequest | null = null;
      let connected = false;
      let phase: 'connect' | 'request' | 'response' = 'connect';
      let timer: NodeJS.Timeout | null = null;

      const clearTimer = () => {
        if (timer) clearTimeout(timer);
        timer = null;
      };
      const fail = (kind: ForwardFailureKind, code: string) => {
        if (settled) return;
        settled = true;
        clearTimer();
        upstream?.destroy();
        const r: ForwardFailure = { kind, phase, notSent: !connected, bodyConsumed: false, code };
        if (!socket.destroyed) {
          try {
            onFailure(r);
          } catch {
            socket.destroy();
          }
        }
        resolve(r);
      };

      const onClientError = () => {
        if (!settled) fail('client_gone', 'CLIENT_CLOSED');
        socket.destroy();
        upstream?.destroy();
      };
      socket.on('error', onClientError);
      socket.once('close', () => {
        if (!settled) fail('client_gone', 'CLIENT_CLOSED');
      });

      const attach = (cr: http.ClientRequest) => {
        upstream = cr;
        cr.on('socket', (s) => {
          const onConnect = () => {
            connected = true;
            phase = 'request';
            clearTimer();
            if (!settled) timer = setTimeout(() => fail('timeout', 'RESPONSE_TIMEOUT'), opts.responseTimeoutMs);
          };
          if (s.connecting) s.once('connect', onConnect);
          else onConnect();
        });
      };

      if (!mayConnect(backend)) {
        fail('refused', ADDRESS_NOT_ALLOWED);
        return;
      }
      timer = setTimeout(() => fail('timeout', 'CONNECT_TIMEOUT'), opts.connectTimeoutMs);
      slot.fn = attach;
      try {
        proxy.ws(
          req,
          socket,
          head,
          {
            target: backend.target as unknown as httpProxy.ProxyTarget,
            agent: backend.target.protocol === 'https:' ? unpooledHttpsAgent : unpooledHttpAgent,
          },
          (err: Error) => {
            if (upgraded) {
              // An upgraded connection failed on the backend side: close both ends.
              socket.destroy();
              return;
            }
            // After a failure the caller's answer may still be on its way out: leave the socket to it.
            if (settled) return;
            const e = err as NodeJS.ErrnoException;
            fail(classify(e), e.code ?? e.message);
          },
        );
      } catch (err) {
        fail('bad_request', (err as NodeJS.ErrnoException).code ?? 'INVALID_REQUEST');
      } finally {
        slot.fn = null;
      }
      const cr = upstream as http.ClientRequest | null;
      if (!cr) {
        fail('bad_gateway', 'NO_UPSTREAM_REQUEST');
        return;
      }
      // http-proxy pipes an answer other than 101 into the client socket and leaves both open
      // for good. Replace that: the caller answers 502 and both ends are closed.
      cr.removeAllListeners('response');
      cr.on('response', (proxyRes: http.IncomingMessage) => {
        proxyRes.destroy();
        phase = 'response';
        fail('bad_gateway', `NOT_101_${proxyRes.statusCode ?? 0}`);
      });
      // Runs after http-proxy's own upgrade handler, which pipes the sockets and sets their timeouts to 0.
      cr.on('upgrade', (_res: http.IncomingMessage, proxySocket: Duplex & { setTimeout(ms: number): unknown }) => {
        if (settled) {
          proxySocket.destroy();
          socket.destroy();
          return;
        }
        settled = true;
        upgraded = true;
        clearTimer();
        const both = () => {
          socket.destroy();
          proxySocket.destroy();
        };
        proxySocket.on('error', both);
        proxySocket.on('close', both);
        proxySocket.on('timeout', both);
        socket.on('close', both);
        socket.on('timeout', both);
        proxySocket.setTimeout(opts.wsIdleTimeoutMs);
        (socket as Duplex & { setTimeout(ms: number): unknown }).setTimeout(opts.wsIdleTimeoutMs);
        resolve({ kind: 'ok', status: 101 });
      });
      if (socket.destroyed) fail('client_gone', 'CLIENT_CLOSED');
    });
  }

  return {
    engine: 'http-proxy',
    web,
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
