import { createHash } from 'node:crypto';
import { parseTarget } from '../table/backend-target';
import { assignmentKey } from '../registry/store';
import type { Assignment } from '../registry/types';
import { canonicalHost } from '../net/host-names';
import { hostPort } from './probe';

/**
 * How a discovered backend is named and addressed. Every proxy and the registry derive the same id and URL
 * from an assignment, so a discovery reported twice (two proxies, or a proxy and the reconciler) renews one
 * backend instead of creating two.
 */

const MAX_ID = 128;

export function discoveredUrl(a: Pick<Assignment, 'host' | 'port'>): string {
  // Assignments carry no scheme: a tool that was running unregistered is reached as it is on its port.
  return `http://${hostPort(a)}`;
}

export function discoveredId(a: Pick<Assignment, 'host' | 'port'>): string {
  const id = `discovered-${a.host.replace(/[^A-Za-z0-9.-]/g, '_')}-${a.port}`;
  if (id.length <= MAX_ID) return id;
  // A long DNS name: keep ids within the API's limit and still one per host:port.
  return `discovered-${createHash('sha256').update(assignmentKey(a.host, a.port)).digest('hex').slice(0, 32)}-${a.port}`;
}

/** The assignment key (host:port) a backend URL stands on, as the store keys assignments; null if unparsable. */
export function assignmentKeyOfUrl(url: string): string | null {
  const t = parseTarget(url);
  if (!t) return null;
  const host = canonicalHost(t.hostname);
  return host === null ? null : assignmentKey(host, t.port);
}
