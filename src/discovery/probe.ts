import net from 'node:net';
import type { Config } from '../config';
import { ConnectGuard } from '../net/connect-guard';

/** Where a probe knocks: an assignment's host and port. */
export interface ProbeTarget {
  host: string;
  port: number;
}

export interface ProbeOptions {
  /** The whole probe (name lookup, connect, health answer) must finish within this. */
  budgetMs: number;
  /** GET this path after connecting and want a 2xx or 3xx status; null: the connect alone is the answer. */
  healthPath: string | null;
  /**
   * The proxy's connect-time address rule: an assignment's host was judged when it was made, and a name
   * may resolve elsewhere now (rebinding). A probe must not knock where the proxy would refuse to connect.
   */
  guard?: ConnectGuard;
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export type Prober = (target: ProbeTarget) => Promise<ProbeResult>;

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
/** A status line longer than this is garbage, not a slow answer. */
const MAX_STATUS_LINE = 1024;

/** host:port as written in a URL or a Host header (IPv6 in brackets). */
export function hostPort(target: ProbeTarget): string {
  return `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}

/**
 * Is something serving on host:port right now? A TCP connect, then (when configured) one HTTP request
 * whose status line is all that is read. The request is written by hand: a probe needs the first line of
 * the answer and nothing else, and must not borrow a pooled connection that could hide a dead server.
 */
export function probe(target: ProbeTarget, opts: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let head = '';
    if (opts.guard && net.isIP(target.host) !== 0 && !opts.guard.allows(target.host)) {
      resolve({ ok: false, reason: 'address not allowed' });
      return;
    }
    const socket = net.connect({ host: target.host, port: target.port, ...(opts.guard ? { lookup: opts.guard.lookup } : {}) });
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), opts.budgetMs);
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: err.code ?? err.message }));
    socket.on('close', () => finish({ ok: false, reason: opts.healthPath ? 'closed before answering' : 'closed' }));
    socket.on('connect', () => {
      if (opts.healthPath === null) return finish({ ok: true });
      socket.write(
        `GET ${opts.healthPath} HTTP/1.1\r\nhost: ${hostPort(target)}\r\nuser-agent: switchboard-probe\r\nconnection: close\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const eol = head.indexOf('\r\n');
      if (eol < 0 && head.length < MAX_STATUS_LINE) return;
      const m = STATUS_LINE.exec(head);
      if (!m) return finish({ ok: false, reason: 'not an HTTP answer' });
      const status = Number(m[1]);
      finish(status >= 200 && status < 400 ? { ok: true } : { ok: false, reason: `status ${status}` });
    });
  });
}

/** The prober the configuration asks for: its budget and health path, and the proxy's address rule. */
export function configuredProber(config: Config): Prober {
  const d = config.discovery;
  const guard = new ConnectGuard(config.allowedNetworks);
  return (t) => probe(t, { budgetMs: d.probeBudgetMs, healthPath: d.healthPath, guard });
}
