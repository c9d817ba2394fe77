import dns from 'node:dns';
import type { Config } from '../config';
import { badRequest } from './errors';
import { canonicalHost, parseHost } from '../net/host-names';
import { ListeningSockets } from '../net/listening-sockets';
import { NetworkSet, isNeverAllowed, unmapIPv4 } from '../net/networks';

/** Answers every address a DNS name stands for. */
export type Lookup = (name: string) => Promise<string[]>;

export const systemLookup: Lookup = async (name) => {
  const answers = await dns.promises.lookup(name, { all: true, verbatim: true });
  return answers.map((a) => a.address);
};

/**
 * Where a backend URL routes: the origin to store (its host as given) and the assignments it implies. A
 * name and its address are one host to the port registry, so assignments are keyed by address: `host` is
 * the lowest of `addresses`, every address the URL's host stands for (one for an IP literal).
 */
export interface BackendTarget {
  url: string;
  host: string;
  port: number;
  addresses: string[];
}

/** Where a port is assigned for a requested host: its addresses, lowest first (the first is the key). */
export interface HostAddresses {
  /** The host as asked, in canonical form (a name stays a name). */
  host: string;
  addresses: string[];
}

/** Each address once, in one order whatever order DNS answered in: the same name keeps the same key. */
function ordered(addresses: string[]): string[] {
  return [...new Set(addresses)].sort();
}

const LOOKUP_TIMEOUT_MS = 3000;
const LOOKUP_CACHE_MS = 5000;
const LOOKUP_CACHE_MAX = 1024;
const ACCEPTED_MAX = 10_000;



/**
 * Decides which backend URLs and hosts may enter the table: only addresses inside allowedNetworks, never
 * link-local or metadata addresses, never switchboard's own listening sockets (the proxy would route to
 * itself). Names are resolved and every address they stand for must pass.
 */
export class AddressPolicy {
  private readonly allowed: NetworkSet;
  private readonly self: ListeningSockets;
  private readonly cache = new Map<string, { addresses: string[]; until: number }>();
  /**
   * Verdicts on URLs with an IP-literal host never change under one configuration: a client heartbeating
   * the same URL every few seconds is judged once, not on every beat.
   */
  private readonly accepted = new Map<string, BackendTarget>();

  constructor(
    config: Config,
    private readonly lookup: Lookup = systemLookup,
    private readonly now: () => number = Date.now,
  ) {
    this.allowed = new NetworkSet(config.allowedNetworks);
    this.self = new ListeningSockets(config.host, [config.control.port, config.proxy.port]);
  }

  /**
   * A port switchboard turned out to listen on (configured as 0, picked by the kernel): backends there
   * would be switchboard itself too.
   */
  addSelfPort(port: number): void {
    this.self.add(port);
    this.accepted.clear();
  }

  async backendUrl(raw: string): Promise<BackendTarget> {
    const known = this.accepted.get(raw);
    if (known) return known;
    const fail = (code: string, message: string) => badRequest(code, message, 'url');
    // The URL parser silently drops tabs and newlines and reads "\" as "/": refuse them before it can.
    if (!/^[\x21-\x7e]+$/.test(raw) || raw.includes('\\')) throw fail('invalid_url', 'url must not contain spaces, control characters or backslashes');
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw fail('invalid_url', 'url must be an absolute http:// or https:// URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw fail('unsupported_scheme', `url scheme "${u.protocol.slice(0, -1)}" is not allowed: use http or https`);
    if (raw.includes('@') || u.username || u.password) throw fail('invalid_url', 'url must not contain user info');
    if (raw.includes('?') || raw.includes('#')) throw fail('invalid_url', 'url must not have a query or a fragment');
    if (u.pathname !== '/') throw fail('invalid_url', 'url path must be empty or "/"');
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    if (port < 1 || port > 65535) throw fail('invalid_url', 'url port must be in 1..65535');
    const host = parseHost(u.hostname);
    if (!host) throw fail('invalid_url', 'url host must be an IP address or a DNS name');

    const resolved = host.kind === 'ip' ? [host.address] : await this.resolve(host.name, 'url');
    const addresses: string[] = [];
    for (const address of resolved) {
      const a = canonicalHost(unmapIPv4(address)) ?? unmapIPv4(address);
      if (isNeverAllowed(a)) throw fail('url_not_allowed', `url address ${a} is link-local, metadata or otherwise never allowed`);
      if (!this.allowed.has(a)) throw fail('url_not_allowed', `url address ${a} is outside the allowed networks`);
      if (this.self.reaches(a, port)) {
        throw fail('url_not_allowed', `url ${a}:${port} is switchboard itself`);
      }
      addresses.push(a);
    }
    const sorted = ordered(addresses);
    const target = { url: u.origin, host: sorted[0], port, addresses: sorted };
    if (host.kind === 'ip') {
      if (this.accepted.size >= ACCEPTED_MAX) this.accepted.clear();
      this.accepted.set(raw, target);
    }
    return target;
  }

  /**
   * The addresses of a host a port may be assigned on (every one passes this policy now), lowest first:
   * the port is assigned on each, keyed by the first.
   */
  async hostAddresses(raw: string): Promise<HostAddresses> {
    const host = parseHost(raw);
    if (!host) throw badRequest('invalid_host', 'host must be an IP address or a DNS name', 'host');
    const addresses = host.kind === 'ip' ? [host.address] : await this.resolve(host.name, 'host');
    const checked: string[] = [];
    for (const address of addresses) {
      const a = canonicalHost(unmapIPv4(address)) ?? unmapIPv4(address);
      if (isNeverAllowed(a) || !this.allowed.has(a)) {
        throw badRequest('host_not_allowed', `host address ${a} is outside the allowed networks`, 'host');
      }
      checked.push(a);
    }
    return { host: host.kind === 'ip' ? host.address : host.name, addresses: ordered(checked) };
  }

  private async resolve(name: string, field: string): Promise<string[]> {
    const now = this.now();
    const hit = this.cache.get(name);
    if (hit && hit.until > now) return hit.addresses;
    let addresses: string[];
    let timer: NodeJS.Timeout | undefined;
    try {
      addresses = await Promise.race([
        this.lookup(name),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), LOOKUP_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      throw badRequest('unresolvable_host', `${field} host "${name}" does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, field);
    } finally {
      clearTimeout(timer);
    }
    if (addresses.length === 0) throw badRequest('unresolvable_host', `${field} host "${name}" has no addresses`, field);
    if (this.cache.size >= LOOKUP_CACHE_MAX) this.cache.clear();
    this.cache.set(name, { addresses, until: now + LOOKUP_CACHE_MS });
    return addresses;
  }
}
