import https from 'node:https';
import type { Config } from '../../config';
import { applyHttpLimits, httpServerOptions } from '../http-options';
import type { ExchangeListener } from '../listeners';
import type { Certificate } from './certificate';
import type { CertificateStore } from './certificate-store';

/**
 * The HTTPS listener: HTTP/1.1 over TLS with the plain port's parser and limits, its certificate chosen
 * per connection by SNI from the store. Built in this one function so that another kind of TLS server
 * replaces nothing else.
 */
export function createTlsServer(pc: Config['proxy'], certificates: CertificateStore): https.Server {
  const options = httpServerOptions(pc);
  const first = certificates.defaultCertificate;
  const server = https.createServer({
    ...options,
    cert: first.pem.cert,
    key: first.pem.key,
    SNICallback: (servername, cb) => cb(null, certificates.contextFor(servername)),
    // A client that connects and never completes its handshake is cut like one that never sends its head.
    handshakeTimeout: options.headersTimeout,
  });
  // Connections already up keep the context they shook hands with: a reload drops none of them.
  const swap = (c: Certificate) => server.setSecureContext({ cert: c.pem.cert, key: c.pem.key });
  certificates.on('default', swap);
  server.once('close', () => certificates.off('default', swap));
  applyHttpLimits(server, pc);
  return server;
}

/**
 * `target` with Strict-Transport-Security on every answer: set before the handler writes its head, so
 * error pages and redirects carry it too; a backend that sends its own keeps its own.
 */
export function withHsts(target: ExchangeListener, maxAgeSeconds: number): ExchangeListener {
  const value = `max-age=${maxAgeSeconds}`;
  return {
    onRequest(req, res) {
      res.setHeader('strict-transport-security', value);
      target.onRequest(req, res);
    },
    onUpgrade: (req, socket, head) => target.onUpgrade(req, socket, head),
  };
}
