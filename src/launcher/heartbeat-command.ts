import { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import type { HeartbeatOptions } from './args';
import { HeartbeatLoop } from './heartbeat-loop';
import { backendId, newInstance } from './identity';
import { onSignals } from './signals';

/** The id of a backend known only by its URL: host and port, as `run` names its backends. */
export function idForUrl(raw: string): string {
  const url = new URL(raw);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return backendId(host, Number(port));
}

/**
 * `switchboard heartbeat`: the lease part of `run` for a service started some other way. Registers at
 * once, renews until SIGTERM/SIGINT/SIGHUP, then deregisters and answers 0.
 */
export async function heartbeatService(opts: HeartbeatOptions, logger: Logger): Promise<number> {
  const client = new RegistryClient({ registry: opts.registry, token: opts.token });
  const lease = new HeartbeatLoop({ client, tool: opts.tool, id: opts.id ?? idForUrl(opts.url), url: opts.url, ttl: opts.ttl, instance: newInstance(), prefix: opts.prefix, logger });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const unsubscribe = onSignals((s) => {
      unsubscribe();
      resolve(s);
    });
    lease.start();
  });
  logger.info({ event: 'signal', signal }, 'signal received; deregistering');
  await lease.deregister();
  return 0;
}
