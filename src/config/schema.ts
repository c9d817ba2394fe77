import { choice, decimal, defaultsOf, flag, group, halfOf, integer, list, optional, printable, sibling, text, type Setting, type ValueOf } from './settings';

// The configuration: every setting once, with its default, bounds, environment variable and meaning.
// Adding a setting is one entry here and one row in docs/CONFIGURATION.md's tables (a test holds them
// together). Numbers are checked against their bounds, which the error messages name; strings carry the
// words of their rule (`message`).

/** The values proxy.engine accepts (undici forwards plain requests with either: see config.engine_retired). */
export const ENGINES = ['undici', 'http-proxy'] as const;
export type EngineName = (typeof ENGINES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const HOUR_MS = 3_600_000;
const DAY_S = 86_400;
const PORT_MAX = 65_535;
const TOKEN = printable(16, 512);
const SECRET = printable(32, 512);
const PREVIOUS_SECRETS_MAX = 16;
/** RFC 9110 5.6.2's token: what a Via pseudonym is. */
const HTTP_TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const HOST_AND_PORT = '^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$';
const YEAR_S = 365 * DAY_S;
const FILE = { format: 'absolute-path', message: 'must be null or an absolute file path' };
const DIRECTORY = { format: 'absolute-path', message: 'must be null or an absolute directory path' };

const port = (dflt: number, description: string, env: string) => integer(dflt, 0, PORT_MAX, { description, env });
const proxyTimeout = (dflt: number, description: string) => integer(dflt, 1, HOUR_MS, { description });
const cidrs: Setting<string> = { type: 'string', format: 'cidr' };
const address: Setting<{ host: string; port: number }> = {
  type: 'object',
  required: ['host', 'port'],
  properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 1, maximum: PORT_MAX } },
};


// HTTP/2 on the HTTPS port (ALPN h2 beside http/1.1), and the bounds one client's session is held to:
// each bounds what an abusive session can make the proxy hold or do (src/proxy/tls/h2-sessions.ts).
const http2 = group({
  enabled: flag(true, { description: 'HTTP/2 offered by ALPN on the HTTPS port beside HTTP/1.1', env: 'SWITCHBOARD_TLS_HTTP2' }),
  maxConcurrentStreams: integer(100, 1, 1000, { description: 'requests one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)' }),
  maxHeaderListBytes: integer(16_384, 1024, 262_144, { description: "a request's decoded header list, names and values (SETTINGS_MAX_HEADER_LIST_SIZE); the plain port's head limit is 16384" }),
  initialWindowBytes: integer(65_535, 16_384, 16_777_215, { description: "how much of a request body a client may send ahead on each stream (SETTINGS_INITIAL_WINDOW_SIZE)" }),
  maxSessionMemoryMb: integer(10, 1, 1024, { description: 'memory one HTTP/2 connection may hold in the protocol library (frames queued, header tables) before new streams are refused' }),
  maxResetsPerSecond: integer(100, 1, 100_000, { description: 'streams a client may cancel before their answer in one second; past it the connection is closed (GOAWAY ENHANCE_YOUR_CALM)', env: 'SWITCHBOARD_TLS_HTTP2_MAX_RESETS_PER_SECOND' }),
  maxControlFramesPerSecond: integer(500, 10, 100_000, { description: 'PING, SETTINGS and PRIORITY frames a client may send in one second; past it the connection is closed (GOAWAY ENHANCE_YOUR_CALM)' }),
  maxInvalidFrames: integer(100, 0, 100_000, { description: 'invalid or empty frames one connection may send before it is closed' }),
  maxRejectedStreams: integer(100, 0, 100_000, { description: 'streams of one connection refused (over a limit) before it is closed' }),
});

// HTTPS is on when a certificate is configured: the pair (cert and key) or a directory of pairs.
const tls = group({
  port: port(8443, 'the HTTPS port, on when a certificate is configured', 'SWITCHBOARD_TLS_PORT'),
  cert: optional(null, FILE, { description: 'the certificate (PEM, chain included) served by default', env: 'SWITCHBOARD_TLS_CERT' }),
  key: optional(null, FILE, { description: "that certificate's private key (PEM)", env: 'SWITCHBOARD_TLS_KEY' }),
  certDir: optional(null, DIRECTORY, {
    description: 'a directory of <name>.crt/<name>.key pairs, each served for the DNS names it holds (SNI, wildcards included)',
    env: 'SWITCHBOARD_TLS_CERT_DIR',
  }),
  redirectHttp: flag(true, { description: 'with HTTPS on: GET and HEAD on the plain port answered 301 to https, other methods 403' }),
  redirectPort: integer(0, 0, PORT_MAX, { description: 'the port those redirects name; 0: proxy.tls.port' }),
  hsts: flag(false, { description: 'Strict-Transport-Security on every HTTPS answer' }),
  hstsMaxAgeSeconds: integer(YEAR_S, 0, 2 * YEAR_S, { description: 'its max-age' }),
  acmeWebroot: optional(null, DIRECTORY, {
    description: "the directory certbot's webroot mode writes to: /.well-known/acme-challenge/<token> on the plain port is served from it",
  }),
  ticketKeyFile: optional(null, FILE, {
    description: 'a file of 48 random bytes (openssl rand 48) sealing TLS session tickets: proxies reading the same file resume each other\'s sessions; read again on SIGHUP; unset: each process makes its own at start',
    env: 'SWITCHBOARD_TLS_TICKET_KEY_FILE',
  }),
  http2,
});

const proxy = group({
  port: port(8080, "the proxy's port", 'SWITCHBOARD_PROXY_PORT'),
  tls,
  traceContext: flag(true, { description: 'W3C traceparent/tracestate passed on when well-formed, a traceparent created when the client sent none' }),
  trustedProxies: list(cidrs, [], { message: 'must be a list of IP addresses or CIDR ranges' }, { description: 'peers whose X-Forwarded-* headers are believed' }),
  accessLog: flag(true, { description: 'one JSON line per proxied request', env: 'SWITCHBOARD_ACCESS_LOG' }),
  engine: choice(ENGINES, 'undici', `must be ${ENGINES.map((e) => `"${e}"`).join(' or ')}`, {
    description: 'retired: undici forwards plain requests whatever it says; "http-proxy" is accepted and logs config.engine_retired',
    env: 'SWITCHBOARD_PROXY_ENGINE',
  }),
  connectTimeoutMs: proxyTimeout(5000, 'connecting to a backend'),
  responseTimeoutMs: proxyTimeout(60_000, "a backend's response headers, once connected"),
  headersTimeoutMs: proxyTimeout(10_000, "a client's request headers (at most requestTimeoutMs)"),
  requestTimeoutMs: proxyTimeout(300_000, "a client's whole request"),
  keepAliveTimeoutMs: proxyTimeout(5000, 'an idle client connection'),
  drainTimeoutMs: proxyTimeout(10_000, 'in-flight requests at shutdown, before they are cut'),
  agent: group({
    maxSockets: integer(256, 1, 1_000_000, { description: 'connections to one backend' }),
    maxFreeSockets: integer(64, 0, 1_000_000, { description: 'accepted and changes nothing: undici has no cap on idle connections' }),
    freeSocketTimeoutMs: integer(4000, 1, HOUR_MS, { description: 'how long an idle backend connection is kept' }),
  }),
  feedPollMs: proxyTimeout(1000, "how often the store's table version is compared with ours: catches a lost change message"),
  // A hold longer than a minute is an outage, not a restart: the client is better told and left to retry.
  holdMs: integer(5000, 0, 60_000, {
    description: 'how long a request for a tool with an assignment but no live backend waits for one before the 503 page; 0: at once',
    env: 'SWITCHBOARD_PROXY_HOLD_MS',
  }),
  holdMaxPerTool: integer(100, 1, 100_000, { description: 'requests held at once for one tool; past it the 503 page comes at once' }),
  // What one client may hold while it sends a request (src/proxy/request-body.ts, client-slots.ts).
  bufferBodyBytes: integer(65_536, 0, 16_777_216, {
    description: 'a request body of at most this many bytes is read whole before a backend connection is taken; 0: every body streams',
    env: 'SWITCHBOARD_PROXY_BUFFER_BODY_BYTES',
  }),
  bodyIdleTimeoutMs: integer(10_000, 1, HOUR_MS, {
    description: 'the longest silence between two reads of a request body: 408, or the exchange cut once its answer has started',
    env: 'SWITCHBOARD_PROXY_BODY_IDLE_TIMEOUT_MS',
  }),
  maxConnectionsPerClient: integer(128, 0, 1_000_000, {
    description: "backend connections one client address may hold per tool at once; 0: no cap",
    env: 'SWITCHBOARD_PROXY_MAX_CONNECTIONS_PER_CLIENT',
  }),
  relayBytesPerTurn: integer(65_536, 0, 67_108_864, {
    description: 'bytes of long answers relayed in one turn of the event loop before those past 60 KiB in it pause and take turns with the others; 0: no bound',
  }),
  allowUnderscoreHeaders: flag(false, { description: 'pass request header names with "_" to tools; never one that folds onto a header the proxy sets or strips' }),
  maxResponseTimeoutSeconds: integer(3600, 1, 86_400, { description: "the longest responseTimeoutSeconds a tool's policy may set" }),
  landingPage: flag(false, { description: 'GET / on the proxy port lists the tools that have a live backend, each a link' }),
  requireUserAgent: flag(false, { description: 'requests without a User-Agent header are refused with 403' }),
  banReasonOnPage: flag(false, { description: "a banned request's 403 page shows the ban's reason" }),
  via: text('switchboard', { pattern: HTTP_TOKEN, minLength: 1, maxLength: 64, message: "must be 1..64 characters of an HTTP token (letters, digits, !#$%&'*+.^_`|~-)" }, {
    description: "this deployment's pseudonym in Via",
  }),
  maxVia: integer(1, 0, 16, { description: 'how many times a request may already carry proxy.via in its Via; once more is a loop, answered 508' }),
  publicHost: text('localhost', { pattern: HOST_AND_PORT, maxLength: 259, message: 'must be a host name or IPv4 address, optionally with ":port"' }, {
    description: 'the Host an HTTP/1.0 request without one is sent to its tool with, when domain is not set',
  }),
});

const redis = group({
  url: optional(null, { format: 'redis-url', message: 'must be a redis:// or rediss:// URL with a host' }, {
    description: 'unset (and no sentinels): the embedded store',
    env: 'REDIS_URL',
  }),
  sentinels: list(address, [], { message: 'must be a list of {"host","port"} (env: "host:port,host:port")' }, {
    description: 'Redis Sentinel instead of a URL',
    env: 'SWITCHBOARD_REDIS_SENTINELS',
  }),
  sentinelName: optional(null, { pattern: '^[\\w.-]{1,128}$', message: 'must be the master name the sentinels monitor' }, {
    description: 'the master name the sentinels monitor',
    env: 'SWITCHBOARD_REDIS_SENTINEL_NAME',
  }),
  keyPrefix: text('sb:', { pattern: '^[\\w:.-]*$', minLength: 1, maxLength: 64, message: 'must be 1..64 characters of [A-Za-z0-9_:.-]' }, {
    description: 'prefix of every key and channel in Redis',
  }),
  commandTimeoutMs: integer(2000, 50, 60_000, { description: 'how long one Redis command may take' }),
  waitReplicas: integer(0, 0, 100, { description: 'replicas that must acknowledge each registration API write (Redis WAIT); 0: off' }),
  // A write may queue behind one WAIT and then wait in the next: both must fit in one command timeout.
  waitTimeoutMs: integer(500, 1, halfOf('commandTimeoutMs'), { description: 'how long a write waits for them before the API answers 503 not_replicated' }),
});

const leases = group({
  minTtlSeconds: integer(5, 1, DAY_S, { description: 'the shortest lease a heartbeat may ask for' }),
  maxTtlSeconds: integer(3600, sibling('minTtlSeconds'), DAY_S, { description: 'the longest lease a heartbeat may ask for' }),
  defaultTtlSeconds: integer(30, sibling('minTtlSeconds'), sibling('maxTtlSeconds'), { description: 'the lease of a heartbeat that asks for none' }),
  expiryIntervalMs: integer(500, 50, 60_000, { description: 'how often lapsed leases are expired' }),
  lockTtlMs: integer(5000, 500, 600_000, { description: "the expiry leader's lock" }),
  selfPreservation: group({
    threshold: decimal(0.25, 0, 1, { description: 'fraction of the fleet that may lapse within the window before expiry pauses' }),
    windowSeconds: integer(60, 1, DAY_S, { description: 'the window of that count' }),
    minFleet: integer(10, 0, 10_000_000, { description: 'below this many backends expiry never pauses' }),
    hardCapMultiplier: decimal(10, 1, 1000, { description: 'no lease outlives its last heartbeat by more than this many TTLs' }),
  }),
});

const discovery = group({
  enabled: flag(true, { description: 'fallback discovery of tools that answer on their assigned port' }),
  healthPath: optional(null, { pattern: '^/[\\x21-\\x7e]{0,511}$', message: 'must be null or a path starting with "/" (printable characters, no spaces)' }, {
    description: 'path asked with GET after the TCP connect; unset: a connect alone proves the tool is up',
  }),
  probeBudgetMs: integer(300, 10, 60_000, { description: 'time for one probe (connect and health path)' }),
  negativeCacheMs: integer(2000, 0, 600_000, { description: 'how long a failed probe is remembered' }),
  reconcileIntervalMs: integer(10_000, 100, HOUR_MS, { description: 'how often the registry probes assignments without a live backend' }),
  settleMs: integer(500, 0, 60_000, { description: 'how long an answering assignment must stay without a live backend to be healed' }),
  registry: optional(null, { format: 'registry-url', message: 'must be the registry\'s http:// or https:// URL, such as "http://10.0.0.5:8282"' }, {
    description: 'the registry a proxy-only process reports its discoveries to',
    env: 'SWITCHBOARD_REGISTRY',
  }),
  token: optional(null, TOKEN, { description: 'bearer token for those reports; unset: the admin token', env: 'SWITCHBOARD_TOKEN' }),
});

const registry = group({
  snapshotPath: optional(null, FILE, {
    description: "the registry's durable copy; unset: <dataDir>/registry-snapshot.json on the embedded store, none on Redis",
    env: 'SWITCHBOARD_SNAPSHOT_PATH',
  }),
  snapshotIntervalMs: integer(5000, 100, HOUR_MS, { description: 'how often the registry refreshes its copy' }),
  tokenSecret: optional(null, SECRET, { description: 'signs tool tokens so they verify without the store', env: 'SWITCHBOARD_TOKEN_SECRET' }),
  previousTokenSecrets: list<string>(
    { type: 'string', pattern: SECRET.pattern, minLength: SECRET.minLength, maxLength: SECRET.maxLength },
    [],
    {
      maxItems: PREVIOUS_SECRETS_MAX,
      message: `must be a list of at most ${PREVIOUS_SECRETS_MAX} secrets of ${SECRET.minLength}..${SECRET.maxLength} printable characters`,
    },
    { description: 'secrets that still verify (never sign) tokens during a rotation' },
  ),
});

export const SCHEMA = group({
  host: text('127.0.0.1', { format: 'bind-host', message: 'must be an IP address or a host name to bind to' }, {
    description: 'bind address of both ports',
    env: 'SWITCHBOARD_HOST',
  }),
  domain: optional(
    null,
    {
      pattern: '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$',
      message: 'must be a lower-case DNS name such as "tools.example.org"',
    },
    { description: 'host routing: <tool>.<domain>', env: 'SWITCHBOARD_DOMAIN' },
  ),
  adminToken: optional(null, TOKEN, { description: 'the admin bearer token; unset: generated at start', env: 'SWITCHBOARD_ADMIN_TOKEN' }),
  proxy,
  control: group({
    port: port(8282, 'registration API, metrics, health', 'SWITCHBOARD_CONTROL_PORT'),
    // Each entry's form ("*", a name or an address, with or without ":port") is checked where it is read:
    // src/control/control-hosts.ts, which also answers the refusal.
    allowedHosts: list({ type: 'string', minLength: 1, maxLength: 300 }, [], { maxItems: 100, message: 'must be a list of at most 100 host names' }, {
      description: 'names the control port answers to besides localhost, the host name and a name in host; "*": any',
      env: 'SWITCHBOARD_CONTROL_ALLOWED_HOSTS',
    }),
    authFailuresPerMinute: integer(100, 1, 1_000_000, {
      description: 'failed authentications one client address may make on the control port per minute (and in one burst) before 429',
      env: 'SWITCHBOARD_AUTH_FAILURES_PER_MINUTE',
    }),
  }),
  redis,
  leases,
  ports: group({
    min: integer(20_000, 1, PORT_MAX, { description: 'the first port the registry assigns' }),
    max: integer(29_999, sibling('min'), PORT_MAX, { description: 'the last port the registry assigns' }),
  }),
  discovery,
  allowedNetworks: list(cidrs, ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'], {
    minItems: 1,
    message: 'must be a non-empty list of CIDR ranges such as "10.0.0.0/8"',
  }, { description: 'where backends may be: registration and every connection are refused elsewhere' }),
  dataDir: optional('auto', { format: 'data-dir', message: 'must be null, "auto" or an absolute directory path' }, {
    description: 'where this process keeps what must outlive it; "auto": from XDG_DATA_HOME or HOME; unset: nothing is kept',
    env: 'SWITCHBOARD_DATA_DIR',
  }),
  registry,
  log: group({ level: choice(LOG_LEVELS, 'info', `must be one of ${LOG_LEVELS.join(', ')}`, { description: 'pino level', env: 'SWITCHBOARD_LOG_LEVEL' }) }),
  metrics: group({ perToolLabels: flag(false, { description: "a `tool` label on the proxy's request metrics" }) }),
});

export type Config = ValueOf<typeof SCHEMA>;
export type SentinelAddress = Config['redis']['sentinels'][number];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}

/** Every setting's default, read from the schema (frozen: a loaded config is a copy). */
export const DEFAULTS = deepFreeze(defaultsOf(SCHEMA) as Config);
