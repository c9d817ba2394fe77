import type { EndpointOwner } from '../net/connect-guard';
import type { RouteSource } from '../table/route-table';

/**
 * The connect guard's owner rule, from the route table: a backend named by a DNS name must not be reached
 * at an address:port that a tool holds unless that tool routes to the name itself. The registry judged
 * the name by the addresses it had at registration; rebound since, it could hand `/b/` the answers of
 * tool a's backend.
 *
 * Judged per connection, not per request (the guard asks only as a name is resolved), and per name:port
 * rather than per tool, because connections are pooled by origin and every tool routed there shares them.
 * The holder routing to the name is its own registration by name (it holds the addresses the name had
 * then); any other holder is another tool, or a port held by a tool that is not running.
 */
export function assignedElsewhere(routes: RouteSource): EndpointOwner {
  return (hostname, address, port) => {
    const table = routes.current();
    const holder = table?.holderOf(address, port);
    if (holder === undefined) return false;
    const own = table!.lookup(holder)?.backends.some((b) => b.target.port === port && b.target.hostname === hostname);
    return own !== true;
  };
}
