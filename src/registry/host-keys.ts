import { canonicalHost, parseHost } from '../net/host-names';
import { RegistryError, badRequest } from './errors';
import type { AddressPolicy } from './url-policy';

// Which assignment keys a host stands for. Assignments are keyed by address; a name given to release or
// look up a port stands for each address it resolves to.

/** The host in canonical form (the key of an address); 400 `invalid_host` when it is no host at all. */
export function hostKey(host: string): string {
  const c = canonicalHost(host);
  if (c === null) throw badRequest('invalid_host', 'host must be an IP address or a DNS name', 'host');
  return c;
}

/**
 * An address: itself. A name: the addresses it resolves to now, then the name itself, which older
 * registries keyed assignments by (the name alone when it resolves to nothing the policy allows).
 */
export async function hostKeys(policy: AddressPolicy, host: string): Promise<string[]> {
  const c = hostKey(host);
  if (parseHost(c)?.kind === 'ip') return [c];
  try {
    return [...(await policy.hostAddresses(c)).addresses, c];
  } catch (err) {
    if (err instanceof RegistryError) return [c];
    throw err;
  }
}

/** Host (canonical: a name or an address) and port of an http(s) origin; null when it is none. */
export function originOf(url: string): { host: string; port: number } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const host = canonicalHost(u.hostname);
  if (host === null || (u.protocol !== 'http:' && u.protocol !== 'https:')) return null;
  return { host, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
}
