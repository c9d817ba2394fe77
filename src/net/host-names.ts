import net from 'node:net';
import { unmapIPv4 } from './networks';

// How a host of a URL or an assignment is spelled once: one host:port has one key however a client wrote it.

export type ParsedHost = { kind: 'ip'; address: string } | { kind: 'name'; name: string };

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Canonical form of a host, so one host:port has one assignment key however it is spelled: IPv6
 * compressed, lower-case and without brackets; IPv4-mapped IPv6 as the IPv4 address; names lower-case
 * without a trailing dot. Null when it is neither an IP address nor a DNS name.
 */
export function canonicalHost(raw: string): string | null {
  const parsed = parseHost(raw);
  if (!parsed) return null;
  return parsed.kind === 'ip' ? parsed.address : parsed.name;
}

/** The host as an IP address or a DNS name; null when it is neither. */
export function parseHost(raw: string): ParsedHost | null {
  const bare = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (net.isIPv4(bare)) return { kind: 'ip', address: bare };
  if (net.isIPv6(bare)) {
    try {
      // The URL parser compresses and lower-cases IPv6; it also refuses zone ids, which never route here.
      const compressed = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
      return { kind: 'ip', address: unmapIPv4(compressed) };
    } catch {
      return null;
    }
  }
  if (bare !== raw) return null;
  const name = raw.toLowerCase().replace(/\.$/, '');
  if (ENDS_IN_NUMBER.test(name)) return numericIPv4(name);
  return DNS_NAME.test(name) ? { kind: 'name', name } : null;
}

/** A last label of digits or 0x-hex: URL parsers and resolvers read such a host as an IPv4 address. */
const ENDS_IN_NUMBER = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/;

/**
 * "127.1", "2852039166", "0251.0376.0251.0376", "0xa9fea9fe": each is an IPv4 address to getaddrinfo and
 * to the WHATWG URL parser. Taken as a name it would be judged by whatever the resolver makes of it and
 * keyed apart from its dotted form (one port, two assignments); here it becomes the address it spells.
 * Null when it spells no address ("1.2.3.4.5", "256.1.1.1").
 */
function numericIPv4(name: string): ParsedHost | null {
  if (!/^[0-9a-fx.]+$/.test(name)) return null;
  try {
    const hostname = new URL(`http://${name}/`).hostname;
    return net.isIPv4(hostname) ? { kind: 'ip', address: hostname } : null;
  } catch {
    return null;
  }
}
