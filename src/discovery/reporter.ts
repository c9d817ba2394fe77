import { RegistryClient, RegistryHttpError } from '../client/registry-client';
import type { Logger } from '../logger';
import { RegistryError } from '../registry/errors';
import type { RouteAssignment } from '../registry/types';
import type { Healer } from './healer';
import { hostPort } from './probe';

/**
 * How a proxy hands a discovery to the registry. The proxy is data plane and never writes the store: in
 * `serve` the registry is in the same process; a proxy-only process goes through the registration API.
 */
export interface DiscoveryReporter {
  report(a: RouteAssignment): Promise<void>;
}

/** `serve`: the proxy and the registry share one process, and the proxy's probe is the registry's. */
export class LocalReporter implements DiscoveryReporter {
  constructor(private readonly healer: Healer) {}

  async report(a: RouteAssignment): Promise<void> {
    try {
      await this.healer.write(a, 'request');
    } catch (err) {
      // A registration that landed meanwhile is what discovery wanted in the first place.
      if (err instanceof RegistryError && err.code === 'registered_exists') return;
      throw err;
    }
  }
}

/** A proxy-only process: POST /v1/tools/{tool}/discoveries, where the registry checks and probes again. */
export class HttpReporter implements DiscoveryReporter {
  private readonly client: RegistryClient;

  constructor(registry: string, token: string, timeoutMs = 5000) {
    this.client = new RegistryClient({ registry, token, timeoutMs });
  }

  async report(a: RouteAssignment): Promise<void> {
    try {
      await this.client.reportDiscovery(a.tool, a.host, a.port);
    } catch (err) {
      // A registration that landed meanwhile is what discovery wanted in the first place.
      if (err instanceof RegistryHttpError && err.code === 'registered_exists') return;
      throw err;
    }
  }
}

/** Failed reports are logged at most once per interval: a registry outage under load is one line, not thousands. */
export function reportFailureLogger(logger: Logger, intervalMs = 5000): (a: RouteAssignment, err: unknown) => void {
  let last = 0;
  let suppressed = 0;
  return (a, err) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    logger.warn(
      { event: 'discovery.report_failed', tool: a.tool, address: hostPort(a), err: (err as Error).message, suppressed },
      'a discovery could not be written through the registry; the reconciler will heal it',
    );
    suppressed = 0;
  };
}
