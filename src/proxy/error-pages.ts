import http from 'node:http';

/** The answers the proxy gives itself, when no backend's answer can be relayed. */
export type ProxyErrorCode =
  | 'no_such_tool' // 404: nothing registered under that name
  | 'not_running' // 503: the tool is known (it holds ports) but no instance is live
  | 'no_routes' // 503: the proxy has no route table yet
  | 'bad_gateway' // 502: the backend reset the connection, answered garbage, or may not be reached
  | 'backend_refused' // 502: nothing accepts connections on the backend's port (the tool is down or listens elsewhere)
  | 'gateway_timeout' // 504: the backend did not answer in time
  | 'bad_request' // 400: the request cannot be forwarded
  | 'request_timeout' // 408: the client's body went silent for proxy.bodyIdleTimeoutMs
  | 'too_many_connections' // 503: the client holds its share of the tool's backend connections already
  | 'not_implemented' // 501: a transfer coding the proxy does not forward (gzip, chunked)
  | 'version_not_supported' // 505: a request line of another HTTP than 1.0 and 1.1 (HTTP/2.0, HTTP/0.9)
  | 'loop_detected' // 508: the request has come through this deployment's proxies more than proxy.maxVia times
  | 'https_required' // 403: a method other than GET or HEAD on the plain port while it redirects to https
  | 'connect_refused' // 501: CONNECT over HTTP/2 (a tunnel, or a WebSocket by RFC 8441): not offered
  // The operator's policies (src/proxy/policy-gate.ts): each is also the access log's outcome and a reason of
  // switchboard_policy_refusals_total.
  | 'banned' // 403: the client's address or User-Agent is banned
  | 'user_agent' // 403: no User-Agent while proxy.requireUserAgent is on
  | 'rate_limited' // 429: the client is over the tool's rateLimit
  | 'over_concurrency' // 503: the tool has maxConcurrent requests in flight on this proxy
  | 'body_too_large' // 413: the body is larger than the tool's maxBodyBytes
  | 'maintenance'; // 503: the tool, or every tool, is down for maintenance

interface ErrorKind {
  status: number;
  title: string;
  message: (tool: string | undefined) => string;
  retryAfter?: number;
}

const KINDS: Record<ProxyErrorCode, ErrorKind> = {
  no_such_tool: { status: 404, title: 'No such tool', message: (t) => (t ? `no such tool: ${t}` : 'no such tool') },
  not_running: {
    status: 503,
    title: 'Tool is not running',
    message: (t) => `tool is not running: ${t ?? 'unknown'}; it may be starting, try again shortly`,
    retryAfter: 5,
  },
  no_routes: { status: 503, title: 'Proxy is starting', message: () => 'the proxy has not loaded its routes yet', retryAfter: 1 },
  bad_gateway: { status: 502, title: 'Bad gateway', message: (t) => `tool ${t ?? 'unknown'} did not answer properly` },
  backend_refused: {
    status: 502,
    title: 'Bad gateway',
    message: (t) => `tool ${t ?? 'unknown'} refused the connection: nothing accepts connections on its port (it is down, or listens on another port)`,
  },
  gateway_timeout: { status: 504, title: 'Gateway timeout', message: (t) => `tool ${t ?? 'unknown'} did not answer in time` },
  bad_request: { status: 400, title: 'Bad request', message: () => 'the request cannot be forwarded' },
  request_timeout: { status: 408, title: 'Request timeout', message: () => 'the request body stopped coming; send it again' },
  too_many_connections: {
    status: 503,
    title: 'Too many connections',
    message: (t) => `this client has too many requests in progress at tool ${t ?? 'unknown'}; try again shortly`,
    retryAfter: 1,
  },
  not_implemented: { status: 501, title: 'Not implemented', message: () => 'the request uses a transfer coding the proxy does not forward; send it chunked only' },
  version_not_supported: { status: 505, title: 'HTTP version not supported', message: () => 'this port speaks HTTP/1.1 and HTTP/1.0 only' },
  loop_detected: {
    status: 508,
    title: 'Loop detected',
    message: (t) => `the request for tool ${t ?? 'unknown'} came back to this proxy: the tool's address leads to a proxy that forwards it here again`,
  },
  connect_refused: {
    status: 501,
    title: 'Not implemented',
    message: () => 'this proxy opens no CONNECT tunnels and takes WebSockets over HTTP/1.1 only (wss:// with http/1.1)',
  },
  https_required: { status: 403, title: 'HTTPS required', message: () => 'this proxy takes requests over https only: send it to the same address with https://' },
  banned: { status: 403, title: 'Forbidden', message: () => 'access denied' },
  user_agent: { status: 403, title: 'Forbidden', message: () => 'access denied: send a User-Agent header' },
  rate_limited: { status: 429, title: 'Too many requests', message: (t) => `too many requests to tool ${t ?? 'unknown'} from this client; slow down`, retryAfter: 1 },
  over_concurrency: {
    status: 503,
    title: 'Tool is busy',
    message: (t) => `tool ${t ?? 'unknown'} has as many requests in progress as it takes; try again shortly`,
    retryAfter: 1,
  },
  body_too_large: { status: 413, title: 'Content too large', message: (t) => `the request body is larger than tool ${t ?? 'unknown'} takes` },
  maintenance: { status: 503, title: 'Down for maintenance', message: (t) => `tool ${t ?? 'unknown'} is down for maintenance` },
};

export interface ErrorPage {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** JSON when the client asks for it ahead of HTML (API clients, curl -H 'Accept: application/json'). */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  const json = a.search(/application\/(?:[\w.+-]*\+)?json/);
  if (json < 0) return false;
  const html = a.indexOf('text/html');
  return html < 0 || json < html;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface ErrorPageOptions {
  tool?: string;
  requestId: string;
  json: boolean;
  /** Instead of the code's own message: an operator's words (a maintenance message, a ban's reason). */
  message?: string;
  /** Instead of the code's own Retry-After, in seconds. */
  retryAfter?: number;
}

/**
 * The page for an error. It names the tool and the request id (to find the log line) and nothing else:
 * never a backend address, port or stack.
 */
export function renderError(code: ProxyErrorCode, opts: ErrorPageOptions): ErrorPage {
  const k = KINDS[code];
  const message = opts.message ?? k.message(opts.tool);
  const headers: Record<string, string> = { 'cache-control': 'no-store', 'x-request-id': opts.requestId };
  const retryAfter = opts.retryAfter ?? k.retryAfter;
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  let body: string;
  if (opts.json) {
    headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify({ error: { code, message, field: null, tool: opts.tool ?? null, requestId: opts.requestId } });
  } else {
    headers['content-type'] = 'text/html; charset=utf-8';
    const tool = opts.tool ? `<p>Tool: <code>${escapeHtml(opts.tool)}</code></p>` : '';
    body =
      `<!doctype html><html><head><meta charset="utf-8"><title>${k.status} ${k.title}</title></head>` +
      `<body><h1>${k.status} ${k.title}</h1><p>${escapeHtml(message)}</p>${tool}` +
      `<p><small>Request id: <code>${escapeHtml(opts.requestId)}</code></small></p></body></html>\n`;
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  return { status: k.status, headers, body };
}

/** Answers on a response that has not started. */
export function sendError(res: http.ServerResponse, page: ErrorPage): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(page.status, page.headers);
  res.end(page.body);
}

/** The same page as raw HTTP, for a socket taken over by an upgrade request. */
export function rawErrorResponse(page: ErrorPage): string {
  const lines = [`HTTP/1.1 ${page.status} ${http.STATUS_CODES[page.status] ?? 'Error'}`, 'connection: close'];
  for (const [k, v] of Object.entries(page.headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${page.body}`;
}
