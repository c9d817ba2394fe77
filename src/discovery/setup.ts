import type { Config } from '../config';
import type { Logger } from '../logger';
import type { RouteSource } from '../table/route-table';
import type { Healer } from './healer';
import { OnDemandDiscovery } from './on-demand';
import { HttpReporter, LocalReporter, type DiscoveryReporter } from './reporter';

/**
 * The proxy's discovery, reporting where this process can: to the Healer in the same process (`serve`), or
 * over HTTP to the configured registry (`proxy`). Null when discovery is turned off.
 */
export function proxyDiscovery(opts: { config: Config; routes: RouteSource; healer: Healer | null; logger: Logger }): OnDemandDiscovery | null {
  const { config, routes, healer, logger } = opts;
  if (!config.discovery.enabled) return null;
  let reporter: DiscoveryReporter | null = null;
  const token = config.discovery.token ?? config.adminToken;
  if (healer) {
    reporter = new LocalReporter(healer);
  } else if (config.discovery.registry && token) {
    reporter = new HttpReporter(config.discovery.registry, token);
  } else {
    logger.warn(
      { event: 'discovery.no_registry' },
      'fallback discovery serves requests but cannot write discovered backends: set SWITCHBOARD_REGISTRY and SWITCHBOARD_TOKEN (or SWITCHBOARD_ADMIN_TOKEN); until then the reconciler heals them',
    );
  }
  return new OnDemandDiscovery({ config, routes, reporter, logger });
}
