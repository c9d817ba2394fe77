import type http from 'node:http';

/** The `/<tool>` a request was stripped of (a tool policy's stripPrefix), kept on the request for its answer. */
const STRIPPED = Symbol('switchboard.strippedPrefix');

type Stripped = http.IncomingMessage & { [STRIPPED]?: string };

/**
 * A path-routed request goes to its backend without its first segment: `/web/a?b` as `/a?b`, `/web/` as
 * `/`. X-Forwarded-Prefix (forward-headers.ts) tells the backend what was taken off.
 */
export function stripToolPrefix(req: http.IncomingMessage): void {
  const url = req.url ?? '/';
  const end = url.indexOf('/', 1);
  const query = url.indexOf('?');
  const cut = end < 0 || (query >= 0 && query < end) ? (query >= 0 ? query : url.length) : end;
  (req as Stripped)[STRIPPED] = url.slice(0, cut);
  const rest = url.slice(cut);
  req.url = rest.startsWith('/') ? rest : `/${rest}`;
}

/**
 * The prefix back on a root-relative Location the backend answered a stripped request with (`/login` as
 * `/web/login`), so the client stays under the tool's path. Absolute URLs and `//host` ones are left alone.
 */
export function restorePrefix(req: http.IncomingMessage, headers: http.OutgoingHttpHeaders): void {
  const prefix = (req as Stripped)[STRIPPED];
  if (prefix === undefined) return;
  const location = headers.location;
  if (typeof location === 'string' && location.startsWith('/') && !location.startsWith('//')) headers.location = prefix + location;
}
