import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { CountCell, HistogramCell } from '../plain-metrics';
import { AccessLog } from './access-line';
import type { Exchange } from './exchange';
import { TrafficCounters } from './traffic-counters';


/**
 * What the proxy counts and logs of each exchange: requests by status (and tool), durations, errors by kind,
 * and the access-log line. Requests and durations are plain numbers in cells kept here by label set
 * (plain-metrics.ts), read at scrape time; errors, which are rare, go to prom-client's counter directly.
 */
export class ProxyAccounting {
  private readonly requests = new Map<string, CountCell>();
  private readonly durations = new Map<string, HistogramCell>();
  private readonly errors = new Map<string, { inc(): void }>();
  private readonly accessLog: AccessLog | null;
  /** Plain per-tool counts for the status page's rates, kept whatever the metrics settings. */
  readonly traffic = new TrafficCounters();

  constructor(
    private readonly metrics: Metrics | undefined,
    logger: Logger,
    accessLogOn: boolean,
  ) {
    this.accessLog = accessLogOn ? new AccessLog(logger) : null;
  }

  /** An exchange is over: its status, duration and access-log line. */
  ended(req: http.IncomingMessage, ex: Exchange, status: number): void {
    const seconds = (performance.now() - ex.started) / 1000;
    this.countStatus(status, ex.routeTool);
    this.observeDuration(seconds, ex.routeTool);
    this.accessLog?.write(req, ex, status, Math.round(seconds * 1e4) / 10);
  }

  /** A request counted by status alone (one Node's parser refused before it became an exchange). */
  countStatus(status: number, tool = ''): void {
    this.traffic.count(tool, status);
    const m = this.metrics;
    if (!m) return;
    const key = m.perToolLabels ? `${status} ${tool}` : String(status);
    let c = this.requests.get(key);
    if (!c) this.requests.set(key, (c = m.proxyRequestCounts.cell(m.perToolLabels ? { code: String(status), tool } : { code: String(status) })));
    c.n++;
  }

  countError(kind: string): void {
    const m = this.metrics;
    if (!m) return;
    let c = this.errors.get(kind);
    if (!c) this.errors.set(kind, (c = m.proxyErrors.labels(kind)));
    c.inc();
  }

  private observeDuration(seconds: number, tool = ''): void {
    const m = this.metrics;
    if (!m) return;
    const key = m.perToolLabels ? tool : '';
    let h = this.durations.get(key);
    if (!h) this.durations.set(key, (h = m.perToolLabels ? m.proxyRequestDuration.cell(tool) : m.proxyRequestDuration.cell()));
    m.proxyRequestDuration.observe(h, seconds);
  }
}
