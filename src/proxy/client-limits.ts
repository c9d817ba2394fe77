import type { Config } from '../config';

/**
 * What one client may hold of the proxy while it sends a request: how much of a body is read whole before
 * a backend connection is taken (proxy.bufferBodyBytes; 0: every body is streamed), how long a body may go
 * silent between two reads (proxy.bodyIdleTimeoutMs), and how many backend connections one client address
 * may hold per tool (proxy.maxConnectionsPerClient; 0: no cap).
 */
export interface ClientLimits {
  bufferBodyBytes: number;
  bodyIdleTimeoutMs: number;
  maxConnectionsPerClient: number;
}

export const CLIENT_LIMIT_DEFAULTS: Readonly<ClientLimits> = {
  bufferBodyBytes: 64 * 1024,
  bodyIdleTimeoutMs: 10_000,
  // Half the default backend pool (proxy.agent.maxSockets 256): one address alone cannot take a tool offline.
  maxConnectionsPerClient: 128,
};

/** The limits a proxy config sets; each one it does not name keeps its default. */
export function clientLimits(pc: Config['proxy']): ClientLimits {
  const set = pc as Config['proxy'] & Partial<ClientLimits>;
  return {
    bufferBodyBytes: set.bufferBodyBytes ?? CLIENT_LIMIT_DEFAULTS.bufferBodyBytes,
    bodyIdleTimeoutMs: set.bodyIdleTimeoutMs ?? CLIENT_LIMIT_DEFAULTS.bodyIdleTimeoutMs,
    maxConnectionsPerClient: set.maxConnectionsPerClient ?? CLIENT_LIMIT_DEFAULTS.maxConnectionsPerClient,
  };
}
