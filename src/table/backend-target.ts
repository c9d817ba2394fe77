/**
 * Where a backend is reached, parsed once per backend. http-proxy re-parses a target given as a string
 * on every request (a measurable share of its cost per request); this object is handed to it as is. The fields are those of a parsed URL
 * that an HTTP client connects with, so another engine can use it just as well. (No `host`: Node's client
 * connects to `hostname` and overwrites `host` with it.)
 */
export interface BackendTarget {
  readonly protocol: 'http:' | 'https:';
  /** Name or address to connect to; an IPv6 address without brackets. */
  readonly hostname: string;
  readonly port: number;
  /** scheme://host:port, brackets around an IPv6 address: the key of undici's connection pools. */
  readonly origin: string;
}

// The shape nearly every registered URL has: scheme, a dotted-quad address or a lower-case name, a port.
// Parsed by hand, 100,000 of them cost a fraction of what WHATWG URL objects do; anything else (IPv6,
// defaults, paths, odd spellings a URL parser would normalise) goes through URL.
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const PLAIN = new RegExp(
  `^(https?)://((?:${OCTET}\\.){3}${OCTET}|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?):([1-9]\\d{0,4})/?$`,
);

/** The parsed target of an http(s) URL, or null when the URL cannot be routed to. */
export function parseTarget(url: string): BackendTarget | null {
  const m = PLAIN.exec(url);
  if (m) {
    const port = Number(m[3]);
    const protocol = m[1] === 'https' ? 'https:' : 'http:';
    const defaultPort = protocol === 'https:' ? 443 : 80;
    if (port <= 65535 && port !== defaultPort) return makeTarget(protocol, m[2], port);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) return null;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return makeTarget(u.protocol, hostname, port);
}

/** Whether parseTarget would answer a target, without making one where the fast path decides. */
export function isRoutable(url: string): boolean {
  const m = PLAIN.exec(url);
  return (m !== null && Number(m[3]) <= 65535) || parseTarget(url) !== null;
}

function makeTarget(protocol: 'http:' | 'https:', hostname: string, port: number): BackendTarget {
  const origin = `${protocol}//${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
  return Object.freeze({ protocol, hostname, port, origin });
}
