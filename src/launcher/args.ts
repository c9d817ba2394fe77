import { clientDefaults } from '../client/defaults';
import { parseFlags, usageError, type ValueNames } from '../client/flags';
import { tokenFrom, type TokenFlags } from '../client/token-source';
import { canonicalHost } from '../net/host-names';

export interface RegistryTarget {
  registry: string;
  token: string;
}

export interface RunOptions extends RegistryTarget {
  tool: string;
  host: string;
  ttl?: number;
  fallbackPort?: number;
  /** --restart: start the child again when it exits on its own. */
  restart: boolean;
  /** --restart-max-delay (seconds, given in ms): the cap of the backoff between restarts. */
  restartMaxDelayMs: number;
  command: string;
  args: string[];
  /** The command was one string with shell syntax in it: it runs as `sh -c STRING` (command and args say so). */
  viaShell: boolean;
  /** --prefix: the backend is a sub-route of the tool (the requests under this path). */
  prefix?: string;
}

export interface HeartbeatOptions extends RegistryTarget {
  tool: string;
  url: string;
  id?: string;
  ttl?: number;
  prefix?: string;
}

const TOOL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** As the registry takes a backend's prefix (docs/openapi.json HeartbeatRequest.prefix). */
const PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/;

function prefix(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!PREFIX.test(raw) || raw.length > 256) throw usageError(`--prefix: "${raw}" must be a path such as /api (segments of A-Z a-z 0-9 . _ ~ -, no trailing slash)`);
  return raw;
}

function integer(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw usageError(`${flag}: must be an integer in ${min}..${max}, got "${raw}"`);
  return n;
}

function tool(raw: string | undefined): string {
  if (!raw) throw usageError('--tool is required');
  if (!TOOL.test(raw)) throw usageError(`--tool: "${raw}" is not a lower-case DNS label`);
  return raw;
}

function target(values: { registry?: string } & TokenFlags, env: NodeJS.ProcessEnv): RegistryTarget {
  const defaults = clientDefaults(env);
  const registry = values.registry ?? defaults.registry;
  let parsed: URL;
  try {
    parsed = new URL(registry);
  } catch {
    throw usageError(`--registry: "${registry}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError('--registry: must be an http:// or https:// URL');
  const token = tokenFrom(values, defaults.token);
  if (!token) throw usageError('--token-file PATH (or SWITCHBOARD_TOKEN, or --token) is required: registration is not optional');
  return { registry, token };
}

/** Only a sanity check: the registry enforces its configured bounds (5..3600 s by default) and the launcher adapts to a refusal. */
const TTL_MIN = 1;
const TTL_MAX = 86_400;

/** --restart-max-delay, in seconds. */
export const RESTART_MAX_DELAY_DEFAULT_S = 30;
const RESTART_MAX_DELAY_MIN_S = 1;
const RESTART_MAX_DELAY_MAX_S = 3600;

/** The values of the launchers' flags, as the usage text names them. */
const VALUES: ValueNames = { tool: 'T', registry: 'URL', token: 'TOKEN', 'token-file': 'PATH', ttl: 'S', host: 'H', port: 'P', 'restart-max-delay': 'S', url: 'URL', id: 'ID', prefix: 'PATH' };

/**
 * Shell syntax in a lone command string: `-- 'python3 -m http.server $PORT'` is meant for a shell, which
 * then sees PORT as the launcher set it. A lone plain word (`-- ./server`) runs as it is.
 */
const SHELL_SYNTAX = /[\s$;&|<>(){}`\\"'*?[\]~#]/;

/** The program and arguments after "--": several words run as they are, one string with shell syntax through `sh -c`. */
function commandOf(words: string[]): Pick<RunOptions, 'command' | 'args' | 'viaShell'> {
  if (words.length === 1 && SHELL_SYNTAX.test(words[0])) return { command: '/bin/sh', args: ['-c', words[0]], viaShell: true };
  return { command: words[0], args: words.slice(1), viaShell: false };
}

export function parseRunArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): RunOptions {
  const sep = argv.indexOf('--');
  const { values } = parseFlags({
    args: sep < 0 ? argv : argv.slice(0, sep),
    options: {
      tool: { type: 'string' },
      registry: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      ttl: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      restart: { type: 'boolean' },
      'restart-max-delay': { type: 'string' },
      prefix: { type: 'string' },
    },
    strict: true,
    // Words without a "--" before them are a command put in the wrong place: said below, not as stray words.
    allowPositionals: sep < 0,
  }, VALUES);
  if (sep < 0 || sep === argv.length - 1) throw usageError('run: put the command to start after "--" (switchboard run --tool T -- COMMAND ARGS...)');
  const maxDelay = integer('--restart-max-delay', values['restart-max-delay'], RESTART_MAX_DELAY_MIN_S, RESTART_MAX_DELAY_MAX_S);
  if (maxDelay !== undefined && !values.restart) throw usageError('--restart-max-delay: only with --restart');
  const rawHost = values.host ?? '127.0.0.1';
  const host = canonicalHost(rawHost);
  if (host === null) throw usageError(`--host: "${rawHost}" is not an IP address or a DNS name`);
  return {
    tool: tool(values.tool),
    ...target(values, env),
    host,
    ttl: integer('--ttl', values.ttl, TTL_MIN, TTL_MAX),
    fallbackPort: integer('--port', values.port, 1, 65535),
    restart: values.restart ?? false,
    restartMaxDelayMs: (maxDelay ?? RESTART_MAX_DELAY_DEFAULT_S) * 1000,
    prefix: prefix(values.prefix),
    ...commandOf(argv.slice(sep + 1)),
  };
}

export function parseHeartbeatArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): HeartbeatOptions {
  const { values } = parseFlags({
    args: argv,
    options: {
      tool: { type: 'string' },
      url: { type: 'string' },
      id: { type: 'string' },
      registry: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      ttl: { type: 'string' },
      prefix: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }, VALUES);
  if (!values.url) throw usageError('--url is required');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw usageError(`--url: "${values.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('--url: must be an http:// or https:// URL');
  if (values.id !== undefined && !ID.test(values.id)) throw usageError(`--id: "${values.id}" must match ${ID.source}`);
  return {
    tool: tool(values.tool),
    ...target(values, env),
    url: values.url,
    id: values.id,
    ttl: integer('--ttl', values.ttl, TTL_MIN, TTL_MAX),
    prefix: prefix(values.prefix),
  };
}
