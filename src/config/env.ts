import { ConfigError } from './errors';
import { SCHEMA } from './schema';
import { settingsOf, type Setting } from './settings';

const ENV_SETTINGS = settingsOf(SCHEMA).filter(([, s]) => typeof s.env === 'string');

/** Environment variables operators script against, and the config key each one sets. */
export const ENV_KEYS: Record<string, string> = Object.fromEntries(ENV_SETTINGS.map(([key, s]) => [s.env as string, key]));

function hostPort(name: string, key: string, text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  if (i < 0) throw new ConfigError(`${name} (${key}): "${text}" is not host:port`);
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

/**
 * An environment string as the value of the schema's type. A string that is not one is passed on as it
 * is, so the schema refuses it with the setting's own message ("got "abc"").
 */
function coerce(name: string, key: string, setting: Setting<unknown>, raw: string): unknown {
  const types = ([] as unknown[]).concat(setting.type);
  if (types.includes('integer')) return /^\d+$/.test(raw) ? Number(raw) : raw;
  if (types.includes('number')) return /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  if (types.includes('boolean')) return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  if (types.includes('array')) {
    const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
    return (setting.items as Setting<unknown>).type === 'object' ? items.map((s) => hostPort(name, key, s)) : items;
  }
  // An empty variable unsets what may be unset (SWITCHBOARD_DATA_DIR= keeps nothing on disk).
  return raw === '' && types.includes('null') ? null : raw;
}

/** The settings the environment gives: [config key, variable name, value], in schema order. */
export function envSettings(env: NodeJS.ProcessEnv): Array<[string, string, unknown]> {
  const out: Array<[string, string, unknown]> = [];
  for (const [key, setting] of ENV_SETTINGS) {
    const name = setting.env as string;
    const raw = env[name];
    if (raw !== undefined) out.push([key, name, coerce(name, key, setting, raw)]);
  }
  return out;
}
