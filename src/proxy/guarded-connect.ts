import type http from 'node:http';
import type { LookupFunction, NetConnectOpts, Socket, TcpNetConnectOpts } from 'node:net';
import { buildConnector } from 'undici';
import type { ConnectGuard } from '../net/connect-guard';

// Where the forwarders' connections meet the connect guard: IP literals are judged before a connection
// (literalJudge), names here, once resolved, with the port they are connected on.

/**
 * undici's `connect` option. A name is resolved by the guard's lookup for the port it is connected on
 * (allowed networks; not switchboard itself; no address:port another tool holds), before a connection is
 * made. One connector for every port: a connector per port would cost a TLS session cache for each of
 * thousands of backend ports. Its lookup learns the port from the connection being opened: net.connect
 * asks the lookup before it returns. Should a lookup ever come later, it is asked without the port, and
 * the connection, once made, is dropped before a byte is written when its peer is switchboard itself or
 * another tool's address:port (undici hands the socket over only after 'connect').
 */
export function guardedConnector(timeoutMs: number, guard: ConnectGuard | undefined): buildConnector.BuildOptions | buildConnector.connector {
  if (!guard) return { timeout: timeoutMs };
  let opening: number | null = null;
  const lookup: LookupFunction = (hostname, options, callback) => (opening === null ? guard.lookup : guard.lookupTo(opening))(hostname, options, callback);
  const connect = buildConnector({ timeout: timeoutMs, lookup });
  return (options, callback) => {
    opening = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    try {
      connect(options, (...args) => {
        const socket = args[1];
        const refused = socket && guard.refusePeer(socket, options.hostname);
        if (!refused) return callback(...args);
        socket.destroy();
        callback(refused, null);
      });
    } finally {
      opening = null;
    }
  };
}

/**
 * An agent of Node's client whose connections resolve names through the guard's lookup for the port they
 * go to: one that stands for switchboard itself fails like an address outside allowedNetworks, and one
 * that stands for another tool's address:port fails too, before a connection is made (a connection's own
 * 'connect' comes too late there: the request is written on it).
 */
export function guardedAgent<A extends http.Agent>(agent: A, guard: ConnectGuard | undefined): A {
  if (!guard) return agent;
  const internals = agent as unknown as { createConnection(options: NetConnectOpts, cb?: unknown): Socket };
  const create = internals.createConnection;
  internals.createConnection = function (this: A, options: TcpNetConnectOpts, cb?: unknown) {
    return create.call(this, { ...options, lookup: guard.lookupTo(Number(options.port)) }, cb);
  };
  return agent;
}
