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

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) client.collectDefaultMetrics({ register: this.registry });
  }
}
