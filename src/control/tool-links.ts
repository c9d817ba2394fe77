/** Where this process's proxy listens, as the status page links to it. */
export interface ProxyAddress {
  port: number;
  /** config.domain: tools are linked in host form, `<tool>.<domain>`. */
  domain: string | null;
  /** The host a link names when the page's request said none usable (the bind address, or loopback). */
  host: string;
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME_OR_V4 = /^[a-z0-9.-]{1,253}$/i;
const BRACKETED_V6 = /^\[[0-9a-f:.]{2,45}\]$/i;

/**
 * The host part of the page's own Host header: the operator reached the control port by that name, so the
 * proxy on the same machine is reached by it too. Anything else than a plain name or address is not used.
 */
export function pageHostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim();
  const end = h.startsWith('[') ? h.indexOf(']') + 1 : h.indexOf(':') < 0 ? h.length : h.indexOf(':');
  if (end <= 0) return null;
  const rest = h.slice(end);
  if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
  const name = h.slice(0, end);
  return NAME_OR_V4.test(name) || BRACKETED_V6.test(name) ? name.toLowerCase() : null;
}

/**
 * Each tool's link: `http://<page host>:<port>/<tool>/` (path form), or `http://<tool>.<domain>:<port>/`
 * with a domain (host form, for a tool name that is a DNS label). Null in a process without a proxy.
 */
export function toolUrls(proxy: ProxyAddress | null, pageHost: string | undefined): (tool: string) => string | null {
  if (!proxy) return () => null;
  const port = proxy.port === 80 ? '' : `:${proxy.port}`;
  const host = pageHostName(pageHost) ?? (proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host);
  const domain = proxy.domain;
  return (tool) => (domain && DNS_LABEL.test(tool) ? `http://${tool}.${domain}${port}/` : `http://${host}${port}/${encodeURIComponent(tool)}/`);
}

/** The host links name when the page's Host says none: the bind address, loopback for a wildcard one. */
export function linkHost(bindHost: string): string {
  return bindHost === '0.0.0.0' || bindHost === '::' || bindHost === '' ? '127.0.0.1' : bindHost;
}
