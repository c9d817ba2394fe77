// The request header names the proxy treats apart from the rest, by what they are to it.

/**
 * Set on every request the proxy forwards, replacing whatever the client sent. A control port refuses any
 * request that carries it (src/control/admission.ts): a backend URL may name a control port (a registry
 * does not know the ports of other processes), and the public port must not become a way into the
 * operator port. A client cannot remove it; sending it itself only gets its own request refused.
 */
export const FORWARDED_MARK = 'x-switchboard-forwarded';

/**
 * Headers that never cross the proxy: hop-by-hop ones (RFC 9110 7.6.1, plus the legacy ones still seen), and
 * `Proxy`, which no client has a use for and CGI servers turn into an HTTP_PROXY variable that the tool's
 * own HTTP client then sends its outbound requests through.
 */
export const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'proxy'];
export const HOP_BY_HOP_SET = new Set(HOP_BY_HOP);

/**
 * Headers a `Connection:` list may never remove: framing (dropping it would desynchronise the backend
 * connection) and the headers this proxy sets itself.
 */
export const PROTECTED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'via',
  'forwarded',
  'traceparent',
  FORWARDED_MARK,
]);

/**
 * What a client says about itself or its request that only a proxy in front may say: its address, the
 * scheme, host, port or path prefix it used, the URL it "originally" asked for. Frameworks believe them
 * (Rack reads X-Forwarded-Ssl and X-Forwarded-Scheme for the scheme, Symfony X-Original-URL for the route,
 * request-ip any of the address headers), so from a peer that is not a trusted proxy they are removed, and
 * those the proxy knows the value of are set afresh (X-Forwarded-Port, X-Forwarded-Prefix; X-Forwarded-For,
 * -Proto and -Host are rewritten on their own). A trusted proxy's pass as they came.
 */
export const CLIENT_CLAIMS = new Set([
  // The client's address, in every spelling a framework reads it from.
  'forwarded',
  'forwarded-for',
  'x-forwarded',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'cf-pseudo-ipv4',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-appengine-user-ip',
  // The scheme, server and port the client used.
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-url-scheme',
  'front-end-https',
  'x-forwarded-server',
  'x-forwarded-port',
  'x-forwarded-prefix',
  // The URL the request "originally" named, which some servers route by instead of the request line.
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-forwarded-uri',
]);

/**
 * Every name the proxy sets or strips. CGI and WSGI servers fold a header name to `HTTP_` + upper case with
 * `-` turned into `_`, so `X_Forwarded_For` lands where `X-Forwarded-For` does, beside or over the one the
 * proxy set: a name with `_` that folds onto one of these never passes, whatever proxy.allowUnderscoreHeaders says.
 */
const OURS = new Set([...HOP_BY_HOP, ...PROTECTED, ...CLIENT_CLAIMS, 'expect']);

/** Whether a header name with `_` is another spelling of one the proxy sets or strips. */
export function foldsOntoOurs(name: string): boolean {
  return OURS.has(name.replace(/_/g, '-'));
}
