import net from 'node:net';

/** Tool names are lower-case DNS labels (docs/openapi.json ToolName): also what a host name can carry. */
const TOOL_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isToolName(s: string): boolean {
  return TOOL_NAME.test(s);
}

/**
 * The Host header as a lookup key, so every spelling of one host finds one tool: lower-case, no port, no trailing dot, IPv6 literals
 * without brackets. null when it is missing or not a host at all.
 */
export function normaliseHost(raw: string | undefined): string | null {
  if (!raw) return null;
  let h = raw.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    const rest = h.slice(end + 1);
    if (rest && !/^:\d{1,5}$/.test(rest)) return null;
    const addr = h.slice(1, end);
    return net.isIPv6(addr) ? addr : null;
  }
  const colon = h.indexOf(':');
  if (colon >= 0) {
    if (!/^:\d{1,5}$/.test(h.slice(colon))) return null;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!h || !/^[a-z0-9.-]+$/.test(h)) return null;
  return h;
}

/**
 * What a request names:
 * - `tool`: the tool to forward to, the path unchanged;
 * - `redirect`: `/<tool>` without its slash; the client is sent to `location`;
 * - `none`: nothing routable. `tool` is set when the request named a well-formed tool name, so an
 *   error page can repeat it; anything else from the client is never echoed.
 */
export type ToolRequest =
  | { kind: 'tool'; tool: string; via: 'host' | 'path' }
  | { kind: 'redirect'; tool: string; location: string }
  | { kind: 'none'; tool?: string };

const NONE: ToolRequest = Object.freeze({ kind: 'none' });

/** The tool a `Host: <tool>.<domain>` names, or null when the host is not of that form. */
export function toolFromHost(host: string | undefined, domain: string | null): string | null {
  if (!domain || !host) return null;
  const h = normaliseHost(host);
  if (!h || h.length <= domain.length + 1 || !h.endsWith(domain) || h[h.length - domain.length - 1] !== '.') return null;
  const label = h.slice(0, h.length - domain.length - 1);
  // One label only: a.b.<domain> is not a tool, and "a.b" could never be one.
  return label.includes('.') ? null : label;
}

/**
 * Resolves a request to a tool. Host routing wins when the Host has the form `<label>.<domain>`; otherwise
 * the first path segment names the tool. The segment is taken from the raw URL and must be a tool name
 * as is: `/%2e%2e/x`, `//x`, `/a%2Fb/` and `/./x` name no tool, so no decoding or normalising can turn
 * one tool's URL into another's.
 */
export function resolveTool(url: string, host: string | undefined, domain: string | null): ToolRequest {
  // Absolute-form ("http://other/x") or "*": the target names its own host, which outranks Host (RFC 9112
  // 3.2.2); routing by Host would hand the backend a request naming another tool. Not ours to route.
  if (url.charCodeAt(0) !== 47 /* / */) return NONE;
  const fromHost = toolFromHost(host, domain);
  if (fromHost !== null) {
    return isToolName(fromHost) ? { kind: 'tool', tool: fromHost, via: 'host' } : NONE;
  }
  let end = 1;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  const segment = url.slice(1, end);
  if (!isToolName(segment)) return NONE;
  if (end === url.length || url.charCodeAt(end) === 63) {
    return { kind: 'redirect', tool: segment, location: `/${segment}/${url.slice(end)}` };
  }
  return { kind: 'tool', tool: segment, via: 'path' };
}
