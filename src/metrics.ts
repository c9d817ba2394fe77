import client from 'prom-client';

/**
 * All metrics of one process, in a registry of its own so several roles (or tests) in one process never
 * collide in prom-client's global registry. Names are the public interface alert rules are written against.
 */
export class Metrics {
  readonly registry = new client.Registry();

  readonly leaseExpirations = new client.Counter({
    name: 'switchboard_lease_expirations_total',
    help: 'Backends removed because their lease lapsed.',
    registers: [this.registry],
  });
  readonly selfPreservationActive = new client.Gauge({
    name: 'switchboard_self_preservation_active',
    help: '1 while lease expiry is paused because too many leases would lapse at once.',
    registers: [this.registry],
  });
  readonly registrations = new client.Counter({
    name: 'switchboard_registrations_total',
    help: 'Heartbeats and registrations by result (created, renewed, rejected, conflict, unavailable).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /**
   * Where switchboard_client_versions reads its counts at scrape time (set by the Registry). It answers a
   * cached value so a scrape never waits on a full read of the store.
   */
  clientVersionsSource: (() => ReadonlyMap<string, number> | Promise<ReadonlyMap<string, number>>) | null = null;
  readonly clientVersions: client.Gauge<'version'> = new client.Gauge({
    name: 'switchboard_client_versions',
    help: 'Stored backends by the client version their last heartbeat reported ("unknown" when absent).',
    labelNames: ['version'],
    registers: [this.registry],
    collect: async () => {
      if (!this.clientVersionsSource) return;
      let counts: ReadonlyMap<string, number>;
      try {
        counts = await this.clientVersionsSource();
      } catch {
        return; // a scrape must not fail because the store did: keep the last values
      }
      this.clientVersions.reset();
      for (const [version, n] of counts) this.clientVersions.set({ version }, n);
    },
  });
  readonly storeUp = new client.Gauge({
    name: 'switchboard_store_up',
    help: '1 when the store answered its last check, 0 when it did not.',
    registers: [this.registry],
  });
  readonly proxyRequests = new client.Counter({
    name: 'switchboard_proxy_requests_total',
    help: 'Requests answered by the proxy, by status code (499: the client left before an answer).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly proxyRequestDuration = new client.Histogram({
    name: 'switchboard_proxy_request_duration_seconds',
    help: 'Time from request to the end of the response, through the proxy.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly proxyErrors = new client.Counter({
    name: 'switchboard_proxy_errors_total',
    help: 'Proxy failures by kind: no_route, not_running, refused, reset, timeout, bad_gateway (one per failed attempt).',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  // Route-table gauges: set by whoever holds a snapshot (the proxy's feed, or the registry), read at scrape.
  readonly routes = new client.Gauge({
    name: 'switchboard_routes',
    help: 'Tools with at least one live backend in the route table.',
    registers: [this.registry],
  });
  readonly backends = new client.Gauge({
    name: 'switchboard_backends',
    help: 'Live backends in the route table, by source (registered, discovered).',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly assignments = new client.Gauge({
    name: 'switchboard_assignments',
    help: 'Port assignments in the port registry.',
    registers: [this.registry],
  });
  readonly assignmentsWithoutBackend = new client.Gauge({
    name: 'switchboard_assignments_without_backend',
    help: 'Port assignments whose tool has no live backend (a missed registration, or a tool that is down).',
    registers: [this.registry],
  });
  readonly routeTableVersion = new client.Gauge({
    name: 'switchboard_route_table_version',
    help: 'Version of the route table this process holds.',
    registers: [this.registry],
  });
  readonly snapshotAge = new client.Gauge({
    name: 'switchboard_snapshot_age_seconds',
    help: 'Seconds since this process last confirmed its route table against the store.',
    registers: [this.registry],
  });
  readonly selfHeals = new client.Counter({
    name: 'switchboard_selfheal_total',
    help: 'Backends routed again by fallback port discovery, by trigger (request, reconcile).',
    labelNames: ['trigger'],
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) client.collectDefaultMetrics({ register: this.registry });
  }
}
