import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { answerClientError } from '../client-error';
import type { Logger } from '../logger';
import type { ProxyAccounting } from './accounting';
import { H2Response } from './tls/h2-exchange';
import type { TlsServer } from './tls/tls-server';

/** A server the proxy listens with: the plain port's or the TLS port's. */
export type Listener = http.Server | TlsServer;

/** What a listener hands its requests and upgrades to (the proxy's handler, or a wrapper of it). */
export interface ExchangeListener {
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** A CONNECT over HTTP/2 (an HTTP/1.1 CONNECT's socket is closed, as Node does without this). */
  onConnect?(req: http.IncomingMessage, res: http.ServerResponse): void;
}

/** Hands a listener's requests and upgrades to `target`; answers what Node's parser refuses itself. */
export function serve(server: Listener, target: ExchangeListener, accounting: ProxyAccounting, logger: Logger): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => target.onRequest(req, res));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => target.onUpgrade(req, socket, head));
  const onConnect = target.onConnect?.bind(target);
  if (onConnect) {
    server.on('connect', (req: http.IncomingMessage, second: Duplex | H2Response) => {
      if (second instanceof H2Response) onConnect(req, second as unknown as http.ServerResponse);
      else second.destroy();
    });
  }
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = answerClientError(err, socket);
    if (status !== null) accounting.countStatus(status);
  });
  server.on('error', (err: Error) => logger.error({ event: 'proxy.server_error', err: err.message }, 'proxy server error'));
}

/**
 * Stops accepting, lets in-flight requests finish for up to `timeoutMs`, then cuts every connection left:
 * the listeners' own, and through `cut` the upgraded ones (which the servers no longer track, though
 * their close waits for them) and the backend connections.
 */
export async function drain(servers: Listener[], timeoutMs: number, cut: () => void): Promise<void> {
  const closed = Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          if (!server.listening) return resolve();
          server.close(() => resolve());
        }),
    ),
  );
  for (const s of servers) s.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  for (const s of servers) s.closeAllConnections();
  cut();
  await closed;
}
