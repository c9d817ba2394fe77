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
