import type { StatusAssignment, StatusBackend, StatusReport, StatusTool } from './status-data';

/**
 * The words and cells the status page and `switchboard status` both show, so a person reading either
 * sees the same thing. Plain strings: each renderer escapes for its own medium.
 */

export const BACKEND_COLUMNS = ['BACKEND', 'URL', 'SOURCE', 'LEASE LEFT', 'HEALTH', 'CLIENT'] as const;

export function leaseText(seconds: number | null): string {
  return seconds === null ? 'unknown' : `${seconds} s`;
}

export function assignmentText(a: StatusAssignment): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function assignmentsText(list: StatusAssignment[]): string {
  return list.length ? list.map(assignmentText).join(', ') : '-';
}

export function backendCells(b: StatusBackend): string[] {
  return [b.id, b.url, b.source, leaseText(b.leaseSecondsLeft), b.health, b.clientVersion ?? '-'];
}

/** The cells of a tool that has assignments but no live backend: the case the alert is about. */
export const NO_BACKEND_CELLS = ['(no live backend)', '-', '-', '-', '-', '-'];

export function toolBackendRows(t: StatusTool): string[][] {
  return t.backends.length ? t.backends.map(backendCells) : [NO_BACKEND_CELLS];
}

export function storeText(r: StatusReport): string {
  const kind = r.store.kind ?? 'unknown store';
  if (r.store.state === 'reachable') return `${kind}, reachable`;
  if (r.store.state === 'unknown') return `${kind}, state unknown`;
  const shown: Record<typeof r.store.dataFrom, string> = {
    store: 'data read from the store',
    'last-known': `showing the last known data, read at ${r.store.dataAt}`,
    snapshot: `showing this process's route table, last confirmed at ${r.store.dataAt}`,
    none: 'no data read yet',
  };
  return `${kind}, store unreachable: ${shown[r.store.dataFrom]}`;
}

export function tableText(r: StatusReport): string {
  return r.table ? `${r.table.version} (epoch ${r.table.epoch || '-'})` : 'unknown';
}

export function snapshotText(r: StatusReport): string | null {
  const s = r.snapshot;
  if (!s) return null;
  return `version ${s.version}, ${s.routes} routes, ${s.backends} backends, confirmed ${s.ageSeconds} s ago`;
}

export function countsText(r: StatusReport): string {
  const c = r.counts;
  return `${c.tools} tools, ${c.routes} with a live backend, ${c.backends} backends, ${c.assignments} assignments (${c.assignmentsWithoutBackend} without a live backend)`;
}

/** The summary above the table, as label and value. */
export function summaryPairs(r: StatusReport): Array<[string, string]> {
  const pairs: Array<[string, string]> = [
    ['Store', storeText(r)],
    ['Table version', tableText(r)],
  ];
  const snapshot = snapshotText(r);
  if (snapshot) pairs.push(['Route table', snapshot]);
  pairs.push(['Tools', countsText(r)], ['Generated', r.generatedAt]);
  return pairs;
}
