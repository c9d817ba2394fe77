import type { Forwarder, ForwarderOptions } from './forward-result';
import { createHttpProxyEngine } from './http-proxy-engine';
import { createUndiciEngine } from './undici-engine';

export type { EngineName, ForwardFailure, ForwardFailureKind, Forwarder, ForwarderOptions, ForwardResult } from './forward-result';
export { ENGINES } from './forward-result';

// The one door from the proxy to its backends. Everything above it speaks ForwardResult, so the engine
// is a setting (proxy.engine) and routing, health, retries and error pages do not change with it.

export function createForwarder(opts: ForwarderOptions): Forwarder {
  // WebSocket upgrades go through http-proxy whatever the engine (undici does not relay upgrades to a
  // client socket), and so does the rare request the undici engine hands back.
  const httpProxy = createHttpProxyEngine(opts);
  return opts.engine === 'undici' ? createUndiciEngine(opts, httpProxy) : httpProxy;
}
