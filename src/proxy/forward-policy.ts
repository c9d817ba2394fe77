import type { Config } from '../config';
import { NetworkSet } from '../net/networks';
import { Via } from './via';

/** What the rewrite of a request's headers needs from the configuration, built once per proxy. */
export interface ForwardPolicy {
  /** Peers whose X-Forwarded-* and other claims are believed (proxy.trustedProxies). */
  trusted: NetworkSet;
  /** proxy.allowUnderscoreHeaders: pass header names with `_`, except those that fold onto one the proxy sets or strips. */
  allowUnderscoreHeaders: boolean;
  /** This deployment's Via entry (proxy.via) and the loops it reveals (proxy.maxVia). */
  via: Via;
  /**
   * The Host sent with a request that has none (HTTP/1.0 allows it): a public name, never the backend's
   * address, which undici would put there and backends echo in absolute links.
   */
  hostFor(tool: string): string;
}

export function forwardPolicy(config: Config): ForwardPolicy {
  const pc = config.proxy;
  const domain = config.domain;
  return {
    trusted: new NetworkSet(pc.trustedProxies),
    allowUnderscoreHeaders: pc.allowUnderscoreHeaders,
    via: new Via(pc.via, pc.maxVia),
    hostFor: domain ? (tool) => `${tool}.${domain}` : () => pc.publicHost,
  };
}
