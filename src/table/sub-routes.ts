import type { Route } from './route';
import type { RouteBackend } from './route-backend';

/** A tool's backends split by sub-route: the prefixed groups, longest prefix first, and the rest. */
interface SubRoutes {
  groups: ReadonlyArray<{ prefix: string; route: Route }>;
  /** The backends without a prefix: every request no group takes. */
  rest: Route;
}

/** Per list of backends (frozen, shared by the tables until the tool changes): its split, or null when no backend has a prefix. */
const splits = new WeakMap<readonly RouteBackend[], SubRoutes | null>();
/** The routes made for a part of a tool: an empty one is a path no backend takes, not a tool without backends. */
const parts = new WeakSet<Route>();

/** Whether `route` is the part of a tool's route a sub-route split made (subRouteOf). */
export function isSubRoute(route: Route): boolean {
  return parts.has(route);
}

function split(route: Route): SubRoutes | null {
  const byPrefix = new Map<string, RouteBackend[]>();
  const rest: RouteBackend[] = [];
  for (const b of route.backends) {
    if (b.prefix === null) rest.push(b);
    else {
      let list = byPrefix.get(b.prefix);
      if (!list) byPrefix.set(b.prefix, (list = []));
      list.push(b);
    }
  }
  if (byPrefix.size === 0) return null;
  const of = (backends: RouteBackend[]): Route => {
    const part: Route = Object.freeze({ tool: route.tool, backends: Object.freeze(backends), assignments: route.assignments });
    parts.add(part);
    return part;
  };
  const groups = [...byPrefix].sort((a, b) => b[0].length - a[0].length).map(([prefix, backends]) => ({ prefix, route: of(backends) }));
  return { groups, rest: of(rest) };
}

/** Whether the path at `url[from..]` is `prefix` itself or under it: "/api" takes "/api", "/api/x", "/api?q", never "/apix". */
function under(url: string, from: number, prefix: string): boolean {
  if (!url.startsWith(prefix, from)) return false;
  const next = url.charCodeAt(from + prefix.length);
  return Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */;
}

/** Where the path within the tool starts: after `/<tool>` for a path-routed request, else at once. */
function pathStart(url: string, byPath: boolean): number {
  if (!byPath) return 0;
  const slash = url.indexOf('/', 1);
  return slash < 0 ? url.length : slash;
}

/**
 * The part of a tool's route a request goes to: the backends of the longest sub-route prefix its path is
 * under, else those without a prefix, judged on the path within the tool (after `/<tool>` when routed by
 * path; `/<tool>` itself was redirected to `/<tool>/` before). A tool none of whose backends has a prefix (nearly every one) is answered as it is,
 * at the cost of a length check (and a WeakMap lookup for a tool with several backends).
 */
export function subRouteOf(route: Route, url: string, byPath: boolean): Route {
  const list = route.backends;
  if (list.length === 0 || (list.length === 1 && list[0].prefix === null)) return route;
  let s = splits.get(list);
  if (s === undefined) splits.set(list, (s = split(route)));
  if (s === null) return route;
  const from = pathStart(url, byPath);
  for (const g of s.groups) if (under(url, from, g.prefix)) return g.route;
  return s.rest;
}
