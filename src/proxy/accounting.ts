import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { protoOf, refererOf, sniOf, tlsVersionOf, userAgentOf } from './access-fields';
import type { Exchange } from './exchange';
import { TrafficCounters } from './traffic-counters';

interface Counter {
  inc(): void;
}
interface Histogram {
  observe(seconds: number): void;
}

function pathOf(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  // The query is left out of the log: it is where tokens end up.
  return (q < 0 ? url : url.slice(0, q)).slice(0, 512);
}

/**
 * What the proxy counts and logs of each exchange: requests by status (and tool), durations, errors by kind,
 * and the access-log line. prom-client hashes label values on every call, so each label set's child is
 * looked up once and kept.
 */
export class ProxyAccounting {
  private readonly requests = new Map<string, Counter>();
  private readonly durations = new Map<string, Histogram>();
  private readonly errors = new Map<string, Counter>();
  private readonly accessLog: Logger | null;
  /** Plain per-tool counts for the status page's rates, kept whatever the metrics settings. */
  readonly traffic = new TrafficCounters();

  constructor(
    private readonly metrics: Metrics | undefined,
    logger: Logger,
    accessLogOn: boolean,
  ) {
    // The access-log record has fixed fields, none of them a secret: the logger's redaction walk, which
    // costs most of a line, is skipped for it.
    this.accessLog = accessLogOn ? logger.child({}, { redact: [] }) : null;
  }

  /** An exchange is over: its status, duration and access-log line. */
  ended(req: http.IncomingMessage, ex: Exchange, status: number): void {
    const seconds = (performance.now() - ex.started) / 1000;
    this.countStatus(status, ex.routeTool);
    this.observeDuration(seconds, ex.routeTool);
    this.accessLog?.info(
      {
        event: 'access',
        requestId: ex.requestId,
        traceId: ex.traceId,
        method: req.method,
        path: pathOf(req.url),
        proto: protoOf(req),
        status,
        bytes: req.socket.bytesWritten - ex.bytesBefore,
        ms: Math.round(seconds * 1e4) / 10,
        tool: ex.tool,
        backend: ex.backend,
        attempts: ex.attempts,
        outcome: ex.outcome,
        held: ex.held,
        hold: ex.hold,
        remote: req.socket.remoteAddress,
        tls: tlsVersionOf(req),
        sni: sniOf(req),
        ua: userAgentOf(req),
        referer: refererOf(req),
      },
      'request',
    );
  }

  /** A request counted by status alone (one Node's parser refused before it became an exchange). */
  countStatus(status: number, tool = ''): void {
    this.traffic.count(tool, status);
    const m = this.metrics;
    if (!m) return;
    const key = m.perToolLabels ? `${status} ${tool}` : String(status);
    let c = this.requests.get(key);
    if (!c) this.requests.set(key, (c = m.perToolLabels ? m.proxyRequests.labels(String(status), tool) : m.proxyRequests.labels(String(status))));
    c.inc();
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
    if (!m.perToolLabels) return m.proxyRequestDuration.observe(seconds);
    let h = this.durations.get(tool);
    if (!h) this.durations.set(tool, (h = m.proxyRequestDuration.labels(tool)));
    h.observe(seconds);
  }
}
