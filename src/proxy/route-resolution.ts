import type http from 'node:http';
import type { Route } from '../table/route';
import type { RouteSource } from '../table/route-table';
import { subRouteOf } from '../table/sub-routes';
import type { Exchange } from './exchange';
import { resolveTool } from './host';

/**
 * Where a request (or upgrade) goes, decided once from its head and the current table: refused with a page,
 * redirected to its tool's path with a slash, or routed to a tool, by its Host or by its path's first
 * segment (`byPath`). Tools come from the table alone: a URL can name anything.
 */
export type Resolution =
  | { kind: 'refused'; page: 'bad_request' | 'no_routes' | 'no_such_tool' }
  | { kind: 'redirect'; location: string; route: Route }
  | { kind: 'route'; route: Route; byPath: boolean };

const BAD_REQUEST: Resolution = { kind: 'refused', page: 'bad_request' };
const NO_ROUTES: Resolution = { kind: 'refused', page: 'no_routes' };
const NO_SUCH_TOOL: Resolution = { kind: 'refused', page: 'no_such_tool' };

/**
 * RFC 9112 3.2: an HTTP/1.1 request without Host, and any request with more than one Host line, is refused
 * with 400. Node keeps the first of two Host lines; a server behind that kept the last would route the
 * request somewhere else than this proxy judged it.
 */
function badHost(req: http.IncomingMessage): boolean {
  if (req.headers.host === undefined) return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && name.toLowerCase() === 'host' && ++seen > 1) return true;
  }
  return false;
}

/** Resolves the request's tool and route; fills in the exchange's tool names as it learns them. */
export function resolveRoute(req: http.IncomingMessage, routes: RouteSource, domain: string | null, ex: Exchange): Resolution {
  if (badHost(req)) return BAD_REQUEST;
  const table = routes.current();
  if (!table) return NO_ROUTES;
  const target = resolveTool(req.url ?? '/', req.headers.host, domain);
  ex.tool = target.tool;
  const route = target.kind === 'none' ? undefined : table.lookup(target.tool);
  // A tool with neither a backend nor an assignment is one the table no longer knows.
  if (!route || (route.backends.length === 0 && route.assignments.length === 0)) return NO_SUCH_TOOL;
  ex.routeTool = route.tool;
  if (target.kind === 'redirect') return { kind: 'redirect', location: target.location, route };
  const byPath = target.kind === 'tool' && target.via === 'path';
  // A backend's prefix (a sub-route) takes the requests under it: the route is the part they go to.
  return { kind: 'route', route: subRouteOf(route, req.url ?? '/', byPath), byPath };
}
