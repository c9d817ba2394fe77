import { readFileSync } from 'node:fs';
import path from 'node:path';
import { envSettings } from './env';
import { ConfigError } from './errors';
import { DEFAULTS, type Config } from './schema';
import { validateConfig, type Origin, type Origins } from './validate';

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

/** Deep merge where `over` wins, noting where each key came from (unknown keys too: the schema refuses them). */
function merge(base: Json, over: Json, origin: Origin, origins: Origins, where = ''): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const key = where ? `${where}.${k}` : k;
    origins.set(key, origin);
    out[k] = isObject(base[k]) && isObject(v) ? merge(base[k], v, origin, origins, key) : v;
  }
  return out;
}

/** Sets one setting; not under a group a file replaced with something else (the schema names that value). */
function setPath(obj: Json, dotted: string, value: unknown): boolean {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (!isObject(next)) return false;
    cur = next;
  }
  cur[parts[parts.length - 1]] = value;
  return true;
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
  const origins: Origins = new Map();
  let cfg = structuredClone(DEFAULTS) as unknown as Json;
  const file = opts.file ?? env.SWITCHBOARD_CONFIG;
  if (file) cfg = merge(cfg, readJson(file, opts.file ? '--config' : 'SWITCHBOARD_CONFIG'), { file }, origins);
  for (const [key, name, value] of envSettings(env)) {
    if (setPath(cfg, key, value)) origins.set(key, { env: name });
  }
  if (opts.overrides) cfg = merge(cfg, opts.overrides, { file: 'overrides' }, origins);
  if (cfg.dataDir === 'auto') cfg.dataDir = defaultDataDir(env);
  return validateConfig(cfg, origins);
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
