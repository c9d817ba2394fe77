import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseCidr } from './net/networks';

/** The engines a proxy can forward plain HTTP requests with (proxy.engine). */
export const ENGINES = ['undici', 'http-proxy'] as const;
export type EngineName = (typeof ENGINES)[number];

export interface SentinelAddress {
  host: string;
  port: number;
}

export interface Config {
  host: string;
  domain: string | null;
  adminToken: string | null;
  proxy: {
    port: number;
    trustedProxies: string[];
    accessLog: boolean;
    /** What forwards plain requests: "undici" or "http-proxy" (WebSocket upgrades: http-proxy always). */
    engine: EngineName;
    connectTimeoutMs: number;
    responseTimeoutMs: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    drainTimeoutMs: number;
    agent: { maxSockets: number; maxFreeSockets: number; freeSocketTimeoutMs: number };
    feedPollMs: number;
    /**
     * How long a request for a tool with an assignment but no live backend waits for one to register or be
     * discovered before the 503 page (a restart, a crash the launcher restarts); 0: answer 503 at once.
     */
    holdMs: number;
    /** Requests held at once for one tool; past it the 503 page comes at once. */
    holdMaxPerTool: number;
  };
  control: { port: number };
  redis: {
    url: string | null;
    sentinels: SentinelAddress[];
    sentinelName: string | null;
    keyPrefix: string;
    commandTimeoutMs: number;
    /** Replicas that must acknowledge each registration API write (Redis WAIT) before it answers; 0: off. */
    waitReplicas: number;
    /** How long a write waits for them before the API answers 503 not_replicated. */
    waitTimeoutMs: number;
  };
  leases: {
    defaultTtlSeconds: number;
    minTtlSeconds: number;
    maxTtlSeconds: number;
    expiryIntervalMs: number;
    lockTtlMs: number;
    selfPreservation: { threshold: number; windowSeconds: number; minFleet: number; hardCapMultiplier: number };
  };
  ports: { min: number; max: number };
  discovery: {
    enabled: boolean;
    /** Path asked with GET after the TCP connect; null: a TCP connect alone proves the tool is up. */
    healthPath: string | null;
    probeBudgetMs: number;
    negativeCacheMs: number;
    reconcileIntervalMs: number;
    settleMs: number;
    /** The registry a proxy-only process reports its discoveries to (SWITCHBOARD_REGISTRY). */
    registry: string | null;
    /** Bearer token for those reports (SWITCHBOARD_TOKEN); the admin token when unset. */
    token: string | null;
  };
  allowedNetworks: string[];
  /**
   * Where this process keeps what must outlive it (the registry's durable copy and token key on the embedded
   * store). "auto" in a file resolves at load time from the environment; null: nothing is kept.
   */
  dataDir: string | null;
  registry: {
    /** The registry's durable copy of the table; null: `<dataDir>/registry-snapshot.json` on the embedded store, off on Redis. */
    snapshotPath: string | null;
    snapshotIntervalMs: number;
    /** Signs tool tokens so they verify without the store; null: see src/registry/token-keys.ts. */
    tokenSecret: string | null;
    /** Secrets that still verify tokens (not sign them) while a rotation is under way. */
    previousTokenSecrets: string[];
  };
  log: { level: string };
  /** perToolLabels: a `tool` label on the proxy's request metrics (one series per tool and code). */
  metrics: { perToolLabels: boolean };
}

/** The longest proxy.holdMs accepted. */
export const HOLD_MS_MAX = 60_000;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables operators script against, and the config key each one sets. */
export const ENV_KEYS: Record<string, string> = {
  REDIS_URL: 'redis.url',
  SWITCHBOARD_REDIS_SENTINELS: 'redis.sentinels',
  SWITCHBOARD_REDIS_SENTINEL_NAME: 'redis.sentinelName',
  SWITCHBOARD_PROXY_PORT: 'proxy.port',
  SWITCHBOARD_CONTROL_PORT: 'control.port',
  SWITCHBOARD_ADMIN_TOKEN: 'adminToken',
  SWITCHBOARD_DOMAIN: 'domain',
  SWITCHBOARD_HOST: 'host',
  SWITCHBOARD_LOG_LEVEL: 'log.level',
  SWITCHBOARD_ACCESS_LOG: 'proxy.accessLog',
  SWITCHBOARD_PROXY_ENGINE: 'proxy.engine',
  SWITCHBOARD_PROXY_HOLD_MS: 'proxy.holdMs',
  SWITCHBOARD_REGISTRY: 'discovery.registry',
  SWITCHBOARD_TOKEN: 'discovery.token',
  SWITCHBOARD_DATA_DIR: 'dataDir',
  SWITCHBOARD_SNAPSHOT_PATH: 'registry.snapshotPath',
  SWITCHBOARD_TOKEN_SECRET: 'registry.tokenSecret',
};

const DEFAULT_FILE = path.join(__dirname, '..', '..', 'config', 'default.json');
const DEFAULT_FILE_SRC = path.join(__dirname, '..', 'config', 'default.json');

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJson(file: string, label: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${label}: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`${label}: ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function defaultsFile(): string {
  // Compiled code runs from dist/src, tsx runs from src: both find the repo's config/.
  for (const f of [DEFAULT_FILE, DEFAULT_FILE_SRC]) {
    try {
      readFileSync(f);
      return f;
    } catch {
      /* try the next */
    }
  }
  return DEFAULT_FILE;
}

/** Deep merge where `over` wins; unknown keys in `over` are errors so typos do not pass silently. */
function merge(base: Json, over: Json, where: string, file: string): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const key = where ? `${where}.${k}` : k;
    if (!(k in base)) throw new ConfigError(`${key} (in ${file}): unknown configuration key`);
    out[k] = isObject(base[k]) && isObject(v) ? merge(base[k] as Json, v, key, file) : v;
  }
  return out;
}

function setPath(obj: Json, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = cur[p] as Json;
  cur[parts[parts.length - 1]] = value;
}

function envValue(name: string, key: string, raw: string): unknown {
  switch (key) {
    case 'proxy.port':
    case 'control.port':
    case 'proxy.holdMs':
      return /^\d+$/.test(raw) ? Number(raw) : raw;
    case 'proxy.accessLog':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return raw;
    case 'redis.sentinels':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => {
          const i = s.lastIndexOf(':');
          if (i < 0) throw new ConfigError(`${name}: "${s}" is not host:port`);
          return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
        });
    default:
      return raw === '' ? null : raw;
  }
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Programmatic overrides (tests): applied last, same key rules as a file. */
  overrides?: Json;
}

/** Defaults, then the optional file (--config or SWITCHBOARD_CONFIG), then the environment. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const defaultsPath = defaultsFile();
  let cfg = readJson(defaultsPath, 'defaults');
  const file = opts.file ?? env.SWITCHBOARD_CONFIG;
  if (file) cfg = merge(cfg, readJson(file, opts.file ? '--config' : 'SWITCHBOARD_CONFIG'), '', file);
  const sources = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined) continue;
    setPath(cfg, key, envValue(name, key, raw));
    sources.set(key, name);
  }
  if (opts.overrides) cfg = merge(cfg, opts.overrides, '', 'overrides');
  if (cfg.dataDir === 'auto') cfg.dataDir = defaultDataDir(env);
  validate(cfg, (key) => (sources.has(key) ? `${sources.get(key)} (${key})` : key));
  return cfg as unknown as Config;
}

/**
 * The data directory when none is configured: the XDG data home, as other servers keep their state (Caddy's
 * storage). Read from the environment the config is loaded with, so a process started without HOME (and
 * the test harness) keeps nothing on disk unless told where. A relative XDG_DATA_HOME or HOME is ignored, as
 * the XDG base directory rules say: it would otherwise stop the process with an error about dataDir, a key
 * the operator never set.
 */
function defaultDataDir(env: NodeJS.ProcessEnv): string | null {
  if (env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME)) return path.join(env.XDG_DATA_HOME, 'switchboard');
  if (env.HOME && path.isAbsolute(env.HOME)) return path.join(env.HOME, '.local', 'share', 'switchboard');
  return null;
}

function validate(c: Json, label: (key: string) => string): void {
  const get = (key: string): unknown => key.split('.').reduce<unknown>((o, p) => (o as Json)?.[p], c);
  const fail = (key: string, what: string): never => {
    throw new ConfigError(`${label(key)}: ${what}, got ${JSON.stringify(get(key))}`);
  };
  const int = (key: string, min: number, max: number) => {
    const v = get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(key, `must be an integer in ${min}..${max}`);
  };
  const num = (key: string, min: number, max: number) => {
    const v = get(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(key, `must be a number in ${min}..${max}`);
  };
  const bool = (key: string) => {
    if (typeof get(key) !== 'boolean') fail(key, 'must be true or false');
  };
  const nullableString = (key: string, re: RegExp, what: string) => {
    const v = get(key);
    if (v === null) return;
    if (typeof v !== 'string' || !re.test(v)) fail(key, what);
  };

  const host = get('host');
  if (typeof host !== 'string' || !(net.isIP(host) || /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host))) {
    fail('host', 'must be an IP address or a host name to bind to');
  }
  nullableString('domain', /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a lower-case DNS name such as "tools.example.org"');
  nullableString('adminToken', /^[\x21-\x7e]{16,512}$/, 'must be 16..512 printable characters without spaces');
  int('proxy.port', 0, 65535);
  int('control.port', 0, 65535);
  if (get('proxy.port') !== 0 && get('proxy.port') === get('control.port')) fail('control.port', 'must differ from proxy.port');
  const trusted = get('proxy.trustedProxies');
  if (!Array.isArray(trusted) || trusted.some((t) => typeof t !== 'string' || !parseCidr(t))) {
    fail('proxy.trustedProxies', 'must be a list of IP addresses or CIDR ranges');
  }
  bool('proxy.accessLog');
  const engine = get('proxy.engine');
  if (engine !== 'undici' && engine !== 'http-proxy') fail('proxy.engine', 'must be "undici" or "http-proxy"');
  for (const k of ['connectTimeoutMs', 'responseTimeoutMs', 'headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'drainTimeoutMs', 'feedPollMs']) {
    int(`proxy.${k}`, 1, 3_600_000);
  }
  int('proxy.agent.maxSockets', 1, 1_000_000);
  int('proxy.agent.maxFreeSockets', 0, 1_000_000);
  int('proxy.agent.freeSocketTimeoutMs', 1, 3_600_000);
  // A hold longer than a minute is an outage, not a restart: the client is better told and left to retry.
  int('proxy.holdMs', 0, HOLD_MS_MAX);
  int('proxy.holdMaxPerTool', 1, 100_000);

  const url = get('redis.url');
  if (url !== null) {
    let ok = false;
    try {
      const u = new URL(String(url));
      ok = typeof url === 'string' && (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {
      ok = false;
    }
    if (!ok) fail('redis.url', 'must be a redis:// or rediss:// URL with a host');
  }
  const sentinels = get('redis.sentinels');
  if (
    !Array.isArray(sentinels) ||
    sentinels.some((s) => !isObject(s) || typeof s.host !== 'string' || !s.host || typeof s.port !== 'number' || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535)
  ) {
    fail('redis.sentinels', 'must be a list of {"host","port"} (env: "host:port,host:port")');
  }
  nullableString('redis.sentinelName', /^[\w.-]{1,128}$/, 'must be the master name the sentinels monitor');
  if ((sentinels as unknown[]).length > 0 && get('redis.sentinelName') === null) fail('redis.sentinelName', 'is required when sentinels are configured');
  if ((sentinels as unknown[]).length === 0 && get('redis.sentinelName') !== null) fail('redis.sentinels', 'must list at least one sentinel when sentinelName is set');
  nullableString('redis.keyPrefix', /^[\w:.-]{1,64}$/, 'must be 1..64 characters of [A-Za-z0-9_:.-]');
  int('redis.commandTimeoutMs', 50, 60_000);
  int('redis.waitReplicas', 0, 100);
  // A write may queue behind one WAIT and then wait in the next: both must fit in one command timeout.
  int('redis.waitTimeoutMs', 1, Math.max(1, Math.floor((get('redis.commandTimeoutMs') as number) / 2)));
  if ((get('redis.waitReplicas') as number) > 0 && get('redis.url') === null && (sentinels as unknown[]).length === 0) {
    fail('redis.waitReplicas', 'needs Redis (redis.url or redis.sentinels): the embedded store has no replicas');
  }

  int('leases.minTtlSeconds', 1, 86_400);
  int('leases.maxTtlSeconds', get('leases.minTtlSeconds') as number, 86_400);
  int('leases.defaultTtlSeconds', get('leases.minTtlSeconds') as number, get('leases.maxTtlSeconds') as number);
  int('leases.expiryIntervalMs', 50, 60_000);
  int('leases.lockTtlMs', 500, 600_000);
  num('leases.selfPreservation.threshold', 0, 1);
  int('leases.selfPreservation.windowSeconds', 1, 86_400);
  int('leases.selfPreservation.minFleet', 0, 10_000_000);
  num('leases.selfPreservation.hardCapMultiplier', 1, 1000);

  int('ports.min', 1, 65535);
  int('ports.max', get('ports.min') as number, 65535);

  bool('discovery.enabled');
  nullableString('discovery.healthPath', /^\/[\x21-\x7e]{0,511}$/, 'must be null or a path starting with "/" (printable characters, no spaces)');
  int('discovery.probeBudgetMs', 10, 60_000);
  int('discovery.negativeCacheMs', 0, 600_000);
  int('discovery.reconcileIntervalMs', 100, 3_600_000);
  int('discovery.settleMs', 0, 60_000);
  const registry = get('discovery.registry');
  if (registry !== null) {
    let ok = false;
    try {
      const u = new URL(String(registry));
      ok = typeof registry === 'string' && (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && !u.username && !u.password;
    } catch {
      ok = false;
    }
    if (!ok) fail('discovery.registry', 'must be the registry\'s http:// or https:// URL, such as "http://10.0.0.5:8282"');
  }
  nullableString('discovery.token', /^[\x21-\x7e]{16,512}$/, 'must be 16..512 printable characters without spaces');

  const nets = get('allowedNetworks');
  if (!Array.isArray(nets) || nets.length === 0 || nets.some((n) => typeof n !== 'string' || !parseCidr(n))) {
    fail('allowedNetworks', 'must be a non-empty list of CIDR ranges such as "10.0.0.0/8"');
  }
  const dataDir = get('dataDir');
  if (dataDir !== null && (typeof dataDir !== 'string' || !path.isAbsolute(dataDir))) fail('dataDir', 'must be null, "auto" or an absolute directory path');
  const snapshotPath = get('registry.snapshotPath');
  if (snapshotPath !== null && (typeof snapshotPath !== 'string' || !path.isAbsolute(snapshotPath))) fail('registry.snapshotPath', 'must be null or an absolute file path');
  int('registry.snapshotIntervalMs', 100, 3_600_000);
  nullableString('registry.tokenSecret', /^[\x21-\x7e]{32,512}$/, 'must be 32..512 printable characters without spaces');
  const previous = get('registry.previousTokenSecrets');
  if (!Array.isArray(previous) || previous.length > 16 || previous.some((p) => typeof p !== 'string' || !/^[\x21-\x7e]{32,512}$/.test(p))) {
    fail('registry.previousTokenSecrets', 'must be a list of at most 16 secrets of 32..512 printable characters');
  }
  bool('metrics.perToolLabels');
  const level = get('log.level');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level as string)) {
    fail('log.level', 'must be one of fatal, error, warn, info, debug, trace, silent');
  }
}

/** The config as it may be logged: secrets replaced. */
export function redactedConfig(c: Config): Config {
  const copy = JSON.parse(JSON.stringify(c)) as Config;
  if (copy.adminToken) copy.adminToken = '[redacted]';
  if (copy.discovery.token) copy.discovery.token = '[redacted]';
  if (copy.registry.tokenSecret) copy.registry.tokenSecret = '[redacted]';
  copy.registry.previousTokenSecrets = copy.registry.previousTokenSecrets.map(() => '[redacted]');
  if (copy.redis.url) {
    try {
      const u = new URL(copy.redis.url);
      if (u.password) u.password = 'redacted';
      copy.redis.url = u.toString();
    } catch {
      /* validated already */
    }
  }
  return copy;
}
