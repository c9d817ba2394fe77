import { policiesSummary } from './status-policies';
import type { StatusAssignment, StatusBackend, StatusReport, StatusTool } from './status-data';
import { stateText } from './tool-state';

/**
 * The words and cells the status page and `switchboard status` both show, so a person reading either
 * sees the same thing. Plain strings: each renderer escapes for its own medium.
 */

export const BACKEND_COLUMNS = ['BACKEND', 'URL', 'SOURCE', 'LEASE LEFT', 'HEALTH', 'CLIENT'] as const;

/** A tool's own cells, beside its name: its state and its traffic over the last minute. */
export const TOOL_COLUMNS = ['STATE', 'REQ/S', '5XX'] as const;

/** Requests per second, to a tenth while small: an operator compares them, they are not accounts. */
export function rateText(perSecond: number): string {
  if (perSecond === 0) return '0';
  if (perSecond < 0.1) return '<0.1';
  return perSecond < 100 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

export function ratioText(ratio: number | null): string {
  if (ratio === null) return '-';
  if (ratio === 0) return '0 %';
  if (ratio < 0.001) return '<0.1 %';
  return `${(ratio * 100).toFixed(1)} %`;
}

export function toolCells(t: StatusTool): string[] {
  return [stateText(t.state), t.traffic ? rateText(t.traffic.requestsPerSecond) : '-', t.traffic ? ratioText(t.traffic.serverErrorRatio) : '-'];
}

/** Why a report has no rates: the process that made it runs no proxy, so it counted no request. */
export const NO_PROXY_TEXT =
  "none counted here: this process runs no proxy (a registry-only process, or the primary of --workers). Each proxy's control port shows its own; /metrics has switchboard_proxy_requests_total";

export function trafficText(r: StatusReport): string {
  const t = r.traffic;
  if (!t) return NO_PROXY_TEXT;
  return `${rateText(t.requestsPerSecond)}/s over the last ${t.windowSeconds} s (${t.requests} requests), 5xx ${ratioText(t.serverErrorRatio)}`;
}

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

/** The cells of a tool the store lost and no longer holds anything of. */
export const LOST_CELLS = ['(not in the store)', '-', '-', '-', '-', '-'];

export function toolBackendRows(t: StatusTool): string[][] {
  if (t.backends.length) return t.backends.map(backendCells);
  return [t.state === 'lost' ? LOST_CELLS : NO_BACKEND_CELLS];
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
  pairs.push(['Tools', countsText(r)], ['Requests', trafficText(r)]);
  const policies = policiesSummary(r);
  if (policies) pairs.push(['Policies', policies]);
  pairs.push(['Generated', r.generatedAt]);
  return pairs;
}
