import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** The URL the proxy reaches a backend at: IPv6 literals need brackets. */
export function backendUrl(host: string, port: number): string {
  return `http://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/**
 * A backend id that stays the same across restarts of the same instance (same host and port), so a
 * restarted launcher renews the lease its predecessor left instead of adding a second backend. Characters
 * the id pattern does not allow (":" of IPv6) become "-".
 */
export function backendId(host: string, port: number): string {
  const safe = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `${safe || 'host'}-${port}`.slice(-128).replace(/^[^A-Za-z0-9]+/, '');
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * A new id for one run of a launcher (20 base32 characters, 100 random bits). Unlike the backend id it
 * differs between two runs on the same host and port, so the registry can tell which run owns a lease.
 */
export function newInstance(): string {
  return [...randomBytes(20)].map((b) => BASE32[b & 31]).join('');
}
