import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types';
import { ConfigError } from './errors';
import { FORMATS } from './formats';
import { RULES } from './rules';
import { SCHEMA, type Config } from './schema';
import { boundOf, halfOf, membersOf, rangeMessage, type Setting } from './settings';

type Json = Record<string, unknown>;

/** Where a value came from: an environment variable, or a file (or the caller's overrides). */
export type Origin = { env: string } | { file: string };
export type Origins = Map<string, Origin>;

let compiled: ValidateFunction | undefined;

/** Compiled on first use: launchers and operator commands never load a configuration. */
function validator(): ValidateFunction {
  if (!compiled) {
    // allErrors: an unknown key is reported before the values it may explain, wherever it is.
    const ajv = new Ajv({ allErrors: true, strict: true, $data: true, allowUnionTypes: true, formats: FORMATS });
    for (const keyword of ['env', 'message']) ajv.addKeyword({ keyword, schemaType: 'string' });
    ajv.addKeyword({
      keyword: 'maximumHalfOf',
      type: 'number',
      schemaType: 'string',
      validate: (name: string, value: number, _schema: unknown, cxt?: DataValidationCxt) => value <= boundOf(halfOf(name), cxt?.parentData as Json),
    });
    compiled = ajv.compile(SCHEMA);
  }
  return compiled;
}

/** The setting a JSON pointer falls in: a list's items are part of the list, as the messages speak of them. */
interface Located {
  key: string;
  setting: Setting<unknown>;
  group: Json | undefined;
  value: unknown;
}

function locate(config: Json, segments: string[]): Located {
  const at: Located = { key: '', setting: SCHEMA, group: undefined, value: config };
  for (const name of segments) {
    const members = membersOf(at.setting);
    if (!members?.[name]) break;
    at.group = at.value as Json;
    at.value = at.group[name];
    at.setting = members[name];
    at.key = at.key ? `${at.key}.${name}` : name;
  }
  return at;
}

function refusal(at: Located, what: string, origins: Origins): ConfigError {
  const origin = origins.get(at.key);
  const label = origin && 'env' in origin ? `${origin.env} (${at.key})` : at.key;
  return new ConfigError(`${label}: ${what}, got ${JSON.stringify(at.value)}`);
}

function errorFor(config: Json, errors: ErrorObject[], origins: Origins): ConfigError {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const group = locate(config, unknown.instancePath.split('/').slice(1)).key;
    const key = [group, (unknown.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.');
    const origin = origins.get(key);
    return new ConfigError(`${key} (in ${origin && 'file' in origin ? origin.file : 'the configuration'}): unknown configuration key`);
  }
  const at = locate(config, errors[0].instancePath.split('/').slice(1));
  const { setting } = at;
  const what = typeof setting.message === 'string' ? setting.message : membersOf(setting) ? 'must be an object of settings' : rangeMessage(setting, at.group);
  return refusal(at, what, origins);
}

/** The configuration checked against the schema, then against the rules between its settings. */
export function validateConfig(config: Json, origins: Origins): Config {
  const check = validator();
  if (!check(config)) throw errorFor(config, check.errors ?? [], origins);
  const valid = config as unknown as Config;
  for (const rule of RULES) {
    const what = rule.broken(valid);
    if (what) throw refusal(locate(config, rule.key.split('.')), what, origins);
  }
  return valid;
}
