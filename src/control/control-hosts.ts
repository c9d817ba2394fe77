import os from 'node:os';
import { ConfigError, type Config } from '../config';
import { parseHost } from '../net/host-names';

/** Entries of control.allowedHosts, at most. */
export const ALLOWED_HOSTS_MAX = 100;

/** A Host header's host (canonical: see parseHost) and port (null: none written), or null when it is no host. */
function splitHost(raw: string): { host: string; ip: boolean; port: number | null } | null {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(raw.trim());
  if (!m) return null;
  const parsed = parseHost(m[1]);
  if (!parsed) return null;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return parsed.kind === 'ip' ? { host: parsed.address, ip: true, port } : { host: parsed.name, ip: false, port };
}

/**
 * control.allowedHosts, each entry checked: a name (or an address), with or without ":port", or "*" for any
 * Host. The schema bounds the list; the form of an entry is judged by the parser the requests are judged by.
 */
export function configuredHosts(config: Config): string[] {
  const raw: unknown = config.control.allowedHosts;
  const fail = (what: string): never => {
    throw new ConfigError(`control.allowedHosts: ${what}, got ${JSON.stringify(raw)}`);
  };
  if (!Array.isArray(raw) || raw.length > ALLOWED_HOSTS_MAX) fail(`must be a list of at most ${ALLOWED_HOSTS_MAX} host names`);
  for (const entry of raw as unknown[]) {
    if (entry !== '*' && (typeof entry !== 'string' || !splitHost(entry))) fail(`${JSON.stringify(entry)} is not "*", a host name or an address, with or without ":port"`);
  }
  return raw as string[];
}

/**
 * The Host values the control port answers to. A page of a rebinding DNS name (evil.example resolving to
 * 127.0.0.1 after it loaded) reaches the port with its own name as Host: only names are refused. Any IP
 * address is accepted, since no page can send another origin's address as its Host, and a scraper
 * reaching the port by address through NAT or a service address does not see the port's own addresses.
 * Names: `localhost`, the machine's host name, the bind host when it is a name, and the configured ones;
 * an entry without a port accepts any port.
 */
export class ControlHosts {
  private readonly any: boolean;
  /** Names accepted with any port, and "name:port" accepted with that port only. */
  private readonly names = new Set<string>();
  private readonly verdicts = new Map<string, boolean>();

  constructor(configured: string[], bindHost: string, hostname: string = os.hostname()) {
    this.any = configured.includes('*');
    for (const entry of ['localhost', hostname, bindHost, ...configured]) {
      const h = entry === '*' ? null : splitHost(entry);
      if (h && !h.ip) this.names.add(h.port === null ? h.host : `${h.host}:${h.port}`);
    }
  }

  /** Whether a request with this Host header is answered. Judged once per spelling (heartbeats repeat theirs). */
  allows(raw: string): boolean {
    if (this.any) return true;
    let ok = this.verdicts.get(raw);
    if (ok === undefined) {
      const h = splitHost(raw);
      ok = h !== null && (h.ip || this.names.has(h.host) || (h.port !== null && this.names.has(`${h.host}:${h.port}`)));
      // Made-up Host values must not grow the cache without bound.
      if (this.verdicts.size >= 1024) this.verdicts.clear();
      this.verdicts.set(raw, ok);
    }
    return ok;
  }
}
