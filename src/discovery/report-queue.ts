import { assignmentKey } from '../registry/store';
import type { RouteAssignment } from '../registry/types';
import type { DiscoveryReporter } from './reporter';

/**
 * Hands discoveries to the registry a few at a time. A fleet restarted without its launchers is found by
 * one burst of requests; reporting each discovery the moment its probe answers would open a connection per
 * tool to the registry (or run as many heal writes at once in `serve`) on the event loop those very
 * requests are waiting on. Queued, the requests are served first and the reports follow. A discovery
 * reported again while still queued is sent once.
 */
export class ReportQueue {
  private readonly queued = new Map<string, RouteAssignment>();
  private inFlight = 0;

  constructor(
    private readonly reporter: DiscoveryReporter,
    private readonly onFailure: (a: RouteAssignment, err: unknown) => void,
    private readonly concurrency = 4,
  ) {}

  /** Discoveries waiting or being reported (tests and benchmarks read it). */
  get pending(): number {
    return this.queued.size + this.inFlight;
  }

  add(a: RouteAssignment): void {
    this.queued.set(assignmentKey(a.host, a.port), a);
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < this.concurrency && this.queued.size > 0) {
      const [key, a] = this.queued.entries().next().value as [string, RouteAssignment];
      this.queued.delete(key);
      this.inFlight++;
      this.reporter
        .report(a)
        .catch((err: unknown) => this.onFailure(a, err))
        .finally(() => {
          this.inFlight--;
          this.drain();
        });
    }
  }
}
