import type http from 'node:http';
import type net from 'node:net';
import { buildConnector } from 'undici';
import type { ConnectGuard } from '../net/connect-guard';

// Where the forwarders' connections meet the connect guard: IP literals are judged before a connection
// (literalJudge), names here, once resolved, with the port they are connected on.

/**
 * undici's `connect` option. A name is resolved by the guard's lookup (allowed networks) and the
 * connection, once made, is dropped before a byte is written when its peer is switchboard itself: undici
 * hands the socket over only after 'connect'. One connector for every port: a connector per port would
 * cost a TLS session cache for each of thousands of backend ports.
 */
export function guardedConnector(timeoutMs: number, guard: ConnectGuard | undefined): buildConnector.BuildOptions | buildConnector.connector {
  if (!guard) return { timeout: timeoutMs };
  const connect = buildConnector({ timeout: timeoutMs, lookup: guard.lookup });
  return (options, callback) =>
    connect(options, (...args) => {
      const socket = args[1];
      const refused = socket && guard.refusePeer(socket);
      if (!refused) return callback(...args);
      socket.destroy();
      callback(refused, null);
    });
}

/**
 * An agent of Node's client whose connections resolve names through the guard's lookup for the port they
 * go to: one that stands for switchboard itself fails like an address outside allowedNetworks, before a
 * connection is made (a connection's own 'connect' comes too late there: the request is written on it).
 */
export function guardedAgent<A extends http.Agent>(agent: A, guard: ConnectGuard | undefined): A {
  if (!guard) return agent;
  const internals = agent as unknown as { createConnection(options: net.NetConnectOpts, cb?: unknown): net.Socket };
  const create = internals.createConnection;
  internals.createConnection = function (this: A, options: net.TcpNetConnectOpts, cb?: unknown) {
    return create.call(this, { ...options, lookup: guard.lookupTo(Number(options.port)) }, cb);
  };
  return agent;
}
