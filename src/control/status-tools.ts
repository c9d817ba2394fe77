import type { PassiveHealth } from '../proxy/health';
import { createRouteBackend } from '../table/route-backend';
import type { RouteTable } from '../table/route-table';
import type { Assignment, Backend, BackendSource, TableSnapshot } from '../registry/types';
import { backendView } from '../registry/views';
import type { BackendHealth, StatusBackend, StatusReport, StatusTool } from '../client/status-report';
import { toolState } from './tool-state';

// The status report's tools, from the store's records or from a route table.

/** How a backend's health is judged: a proxy's passive health, or nothing (a registry-only process). */
export type HealthOf = (tool: string, b: { id: string; url: string; source: BackendSource }) => BackendHealth;

export function passiveHealthOf(health: PassiveHealth | null, now: () => number = Date.now): HealthOf {
  if (!health) return () => 'unknown';
  return (tool, b) => {
    const rb = createRouteBackend(b);
    if (!rb) return 'unknown';
    return health.isDown(tool, rb, now()) ? 'down' : 'ok';
  };
}

function byName(a: { tool: string }, b: { tool: string }): number {
  return a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0;
}

/** A tool with nothing yet; its state is judged once its backends are in (finishTool). */
export function emptyTool(tool: string): StatusTool {
  return { tool, state: 'not_running', url: null, traffic: null, backends: [], assignments: [] };
}

/** Backends by id, assignments by address, and the state they make (lost or not is the caller's to say). */
function finishTool(t: StatusTool): StatusTool {
  t.backends.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  t.assignments.sort((a, b) => (a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1));
  t.state = toolState(t, false);
  return t;
}

/** A backend held by self-preservation is not live: a tool with only held ones is no route, as in switchboard_routes. */
export function countsOf(tools: StatusTool[]): StatusReport['counts'] {
  const c = { tools: tools.length, routes: 0, backends: 0, assignments: 0, assignmentsWithoutBackend: 0 };
  for (const t of tools) {
    if (t.backends.some((b) => !b.held)) c.routes++;
    else c.assignmentsWithoutBackend += t.assignments.length;
    c.backends += t.backends.length;
    c.assignments += t.assignments.length;
  }
  return c;
}

/** Tools from backends and assignments as the store holds them. */
export function toolsFromRecords(backends: Backend[], assignments: Assignment[], now: number, healthOf: HealthOf): StatusTool[] {
  const tools = new Map<string, StatusTool>();
  const entry = (tool: string) => {
    let t = tools.get(tool);
    if (!t) tools.set(tool, (t = emptyTool(tool)));
    return t;
  };
  for (const b of backends) {
    const v = backendView(b, now);
    const sb: StatusBackend = { id: b.id, url: b.url, source: b.source, leaseSecondsLeft: v.leaseSecondsLeft, expiresAt: v.expiresAt, health: healthOf(b.tool, b) };
    if (b.clientVersion !== undefined) sb.clientVersion = b.clientVersion;
    if (b.held) sb.held = true;
    entry(b.tool).backends.push(sb);
  }
  for (const a of assignments) entry(a.tool).assignments.push({ host: a.host, port: a.port });
  return [...tools.values()].map(finishTool).sort(byName);
}

/**
 * Tools from a route table snapshot. It holds no lease times; those of the last store read are used
 * where the backend is the same one (same id and url).
 */
export function toolsFromRouteTable(table: RouteTable, last: TableSnapshot | null, now: number, healthOf: HealthOf): StatusTool[] {
  const known = new Map<string, Backend>();
  for (const b of last?.backends ?? []) known.set(`${b.tool}/${b.id}`, b);
  const tools: StatusTool[] = [];
  for (const route of table.tools()) {
    const t = emptyTool(route.tool);
    t.assignments = route.assignments.map((a) => ({ host: a.host, port: a.port }));
    for (const b of route.backends) {
      const rec = known.get(`${route.tool}/${b.id}`);
      const same = rec !== undefined && rec.url === b.url;
      const v = same ? backendView(rec, now) : null;
      const sb: StatusBackend = { id: b.id, url: b.url, source: b.source, leaseSecondsLeft: v?.leaseSecondsLeft ?? null, expiresAt: v?.expiresAt ?? null, health: healthOf(route.tool, b) };
      if (same && rec.clientVersion !== undefined) sb.clientVersion = rec.clientVersion;
      if (b.held) sb.held = true;
      t.backends.push(sb);
    }
    tools.push(finishTool(t));
  }
  return tools.sort(byName);
}


/**
 * Marks the tools the store lost (the table feed's lost tools) and adds those the data holds nothing of:
 * after a store loss they are the ones an operator looks for, and a store read no longer lists them.
 */
export function withLostTools(tools: StatusTool[], lost: readonly string[]): StatusTool[] {
  if (lost.length === 0) return tools;
  const missing = new Set(lost);
  for (const t of tools) {
    if (missing.delete(t.tool)) t.state = 'lost';
  }
  if (missing.size === 0) return tools;
  const added = [...missing].map((tool) => ({ ...emptyTool(tool), state: 'lost' as const }));
  return [...tools, ...added].sort(byName);
}
