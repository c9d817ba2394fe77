import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Route } from '../table/route';
import { createRouteBackend, type RouteBackend } from '../table/route-backend';
import type { RouteSource } from '../table/route-table';
import { assignmentKey } from '../registry/store';
import type { RouteAssignment } from '../registry/types';
import { discoveredId, discoveredUrl } from './discovered';
import { configuredProber, type Prober } from './probe';
import { ProbeGate } from './probe-gate';
import { ReportQueue } from './report-queue';
import { reportFailureLogger, type DiscoveryReporter } from './reporter';

export interface OnDemandOptions {
  config: Config;
  /** The proxy's route table: the only source of what may be probed. */
  routes: RouteSource;
  /** Where discoveries are written; null: serve the request, let the reconciler write the backend. */
  reporter: DiscoveryReporter | null;
  logger: Logger;
  prober?: Prober;
  now?: () => number;
}

/**
 * Fallback port discovery on the request path (the proxy's onNoLiveBackend hook). A tool with an
 * assignment but no backend gets its assigned host:port probed; if something answers, the request is
 * served by it and the discovery is reported to the registry so every proxy routes it.
 */
export class OnDemandDiscovery {
  private readonly gate: ProbeGate<RouteAssignment>;
  private readonly routes: RouteSource;
  private readonly reports: ReportQueue | null;

  constructor(opts: OnDemandOptions) {
    const d = opts.config.discovery;
    const prober = opts.prober ?? configuredProber(opts.config);
    this.routes = opts.routes;
    this.reports = opts.reporter ? new ReportQueue(opts.reporter, reportFailureLogger(opts.logger)) : null;
    // The report is part of the single flight: one probe, one report, however many requests waited.
    this.gate = new ProbeGate(async (a) => {
      const result = await prober(a);
      if (result.ok) this.report(a);
      return result;
    }, d.negativeCacheMs, opts.now);
  }

  /** Probes started so far (one per assignment per negative-cache window at most). */
  get probes(): number {
    return this.gate.probes;
  }

  /** The hook: a backend for this request, or null when nothing answers on the tool's assignments. */
  async backendFor(tool: string, _route: Route): Promise<RouteBackend | null> {
    // The hook's argument is trusted no further than the table itself: only assignments the current
    // table holds for this tool are ever probed.
    const route = this.routes.current()?.lookup(tool);
    const assignments = route?.assignments ?? [];
    if (assignments.length === 0) return null;
    return new Promise((resolve) => {
      let pending = assignments.length;
      let answered = false;
      for (const a of assignments) {
        void this.gate.check(assignmentKey(a.host, a.port), a).then((r) => {
          pending--;
          if (r.ok && !answered) {
            const backend = createRouteBackend({ id: discoveredId(a), url: discoveredUrl(a), source: 'discovered' });
            if (backend) {
              answered = true;
              return resolve(backend);
            }
          }
          if (pending === 0 && !answered) resolve(null);
        });
      }
    });
  }

  /** The backend failed a request: its port is probed again next time, not answered from memory. */
  forget(backend: RouteBackend): void {
    this.gate.forget(assignmentKey(backend.target.hostname, backend.target.port));
  }

  private report(a: RouteAssignment): void {
    this.reports?.add(a);
  }
}
