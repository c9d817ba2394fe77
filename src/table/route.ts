import type { RouteAssignment } from './records';
import type { RouteBackend } from './route-backend';

/**
 * One tool's route, what a lookup answers: the backends its requests go to (in round-robin order) and the
 * host:port assignments it holds. Frozen, lists included.
 */
export interface Route {
  readonly tool: string;
  readonly backends: readonly RouteBackend[];
  readonly assignments: readonly RouteAssignment[];
}

export const NO_BACKENDS: readonly RouteBackend[] = Object.freeze([]);
export const NO_ASSIGNMENTS: readonly RouteAssignment[] = Object.freeze([]);

/** The Route of these lists, which it freezes and keeps (the caller hands them over). */
export function freezeRoute(tool: string, backends: RouteBackend[], assignments: RouteAssignment[]): Route {
  return Object.freeze({
    tool,
    backends: backends.length === 0 ? NO_BACKENDS : Object.freeze(backends),
    assignments: assignments.length === 0 ? NO_ASSIGNMENTS : Object.freeze(assignments),
  });
}

/**
 * `tool`, `host`: strings the table holds already, shared rather than the record's copies of them. The
 * creation time is left out: nothing on the proxy side reads it, and it was a boxed number per route.
 */
export function freezeAssignment(a: RouteAssignment, tool = a.tool, host = a.host): RouteAssignment {
  return Object.freeze({ tool, host, port: a.port });
}
