import type { Forwarder, ForwarderOptions } from './forward-result';
import { createUndiciEngine } from './undici-engine';
import { createWebSocketRelay } from './websocket-relay';

export type { EngineName, ForwardFailure, ForwardFailureKind, Forwarder, ForwarderOptions, ForwardResult } from './forward-result';

// The one door from the proxy to its backends. Everything above it speaks ForwardResult: routing, health,
// retries and error pages know nothing of the clients below.

export function createForwarder(opts: ForwarderOptions): Forwarder {
  // Plain requests go through undici whatever proxy.engine names (its "http-proxy" is retired); WebSocket
  // upgrades through http-proxy, since undici does not relay an upgrade to a client socket.
  return createUndiciEngine(opts, createWebSocketRelay(opts));
}
