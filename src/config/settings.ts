/**
 * The kinds of setting the configuration schema is written in. Each builder returns a plain JSON Schema
 * node (what Ajv validates) that also carries, for the compiler only, the type of the value it accepts:
 * the Config type is read from the schema, so a setting is declared in one place with its default,
 * bounds, environment variable and description.
 */

/** A JSON Schema node; `__value` never exists at run time, it only carries the setting's type. */
export type Setting<T> = { readonly [keyword: string]: unknown; readonly __value?: T };
export type ValueOf<S> = S extends Setting<infer T> ? T : never;

/** What every setting says about itself besides its value: the schema's description and its env variable. */
export interface Meta {
  description: string;
  env?: string;
}

/**
 * A bound on a number: a constant, another setting of the same group (Ajv's $data), or half of one (the
 * keyword maximumHalfOf, which validate.ts gives Ajv).
 */
export type Bound = number | { $data: string } | { halfOf: string };

export const sibling = (name: string): Bound => ({ $data: `1/${name}` });
export const halfOf = (name: string): Bound => ({ halfOf: name });

function bounds(minimum: Bound, maximum: Bound): object {
  return typeof maximum === 'object' && 'halfOf' in maximum ? { minimum, maximumHalfOf: maximum.halfOf } : { minimum, maximum };
}

/** JSON Schema constraints of a string or a list, and `message`: the same constraints in words. */
export interface Constraints {
  message: string;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
}

export function integer(dflt: number, minimum: Bound, maximum: Bound, meta: Meta): Setting<number> {
  return { type: 'integer', ...bounds(minimum, maximum), default: dflt, ...meta };
}

export function decimal(dflt: number, minimum: Bound, maximum: Bound, meta: Meta): Setting<number> {
  return { type: 'number', ...bounds(minimum, maximum), default: dflt, ...meta };
}

export function flag(dflt: boolean, meta: Meta): Setting<boolean> {
  return { type: 'boolean', default: dflt, message: 'must be true or false', ...meta };
}

export function choice<const V extends readonly string[]>(values: V, dflt: V[number], message: string, meta: Meta): Setting<V[number]> {
  return { enum: [...values], default: dflt, message, ...meta };
}

export function text(dflt: string, rule: Constraints, meta: Meta): Setting<string> {
  return { type: 'string', default: dflt, ...rule, ...meta };
}

/** A string that may be null (unset). */
export function optional(dflt: string | null, rule: Constraints, meta: Meta): Setting<string | null> {
  return { type: ['string', 'null'], default: dflt, ...rule, ...meta };
}

/** Printable ASCII without spaces, min..max characters: the rule of tokens and secrets. */
export function printable(min: number, max: number): Constraints {
  return { pattern: '^[\\x21-\\x7e]*$', minLength: min, maxLength: max, message: `must be ${min}..${max} printable characters without spaces` };
}

export function list<T>(items: Setting<T>, dflt: T[], rule: Constraints, meta: Meta): Setting<T[]> {
  return { type: 'array', items, default: dflt, ...rule, ...meta };
}

type Values<P> = { -readonly [K in keyof P]: ValueOf<P[K]> };

/**
 * Settings that belong together (a JSON object). A key it does not list is an error, so typos do not pass;
 * every key it lists is required of the loaded configuration (a file gives any subset: defaults fill in).
 */
export function group<P extends Record<string, Setting<unknown>>>(properties: P): Setting<Values<P>> {
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

/** A bound's value for `group` (the loaded group holding the setting); NaN when the setting it names is no number. */
export function boundOf(bound: Bound, group: Record<string, unknown> | undefined): number {
  if (typeof bound === 'number') return bound;
  const other = Number('halfOf' in bound ? group?.[bound.halfOf] : group?.[bound.$data.slice('1/'.length)]);
  return 'halfOf' in bound ? Math.floor(other / 2) : other;
}

/** "must be an integer in 5..3600": a number setting's bounds in words, as they apply to `group`. */
export function rangeMessage(setting: Setting<unknown>, group: Record<string, unknown> | undefined): string {
  const kind = setting.type === 'integer' ? 'an integer' : 'a number';
  const maximum = typeof setting.maximumHalfOf === 'string' ? halfOf(setting.maximumHalfOf) : (setting.maximum as Bound);
  return `must be ${kind} in ${boundOf(setting.minimum as Bound, group)}..${boundOf(maximum, group)}`;
}

/** The settings under a group, by name; undefined for a setting (a leaf, or a list: its items are one value). */
export function membersOf(node: Setting<unknown>): Record<string, Setting<unknown>> | undefined {
  return node.type === 'object' && node.additionalProperties === false ? (node.properties as Record<string, Setting<unknown>>) : undefined;
}

/** Every setting under `node` with its dotted key ("proxy.agent.maxSockets"), in schema order. */
export function settingsOf(node: Setting<unknown>, prefix = ''): Array<[string, Setting<unknown>]> {
  const members = membersOf(node);
  if (!members) return [[prefix, node]];
  return Object.entries(members).flatMap(([name, child]) => settingsOf(child, prefix ? `${prefix}.${name}` : name));
}

/** The defaults of every setting under `node`, as the nested object a configuration is. */
export function defaultsOf(node: Setting<unknown>): unknown {
  const members = membersOf(node);
  if (!members) return structuredClone(node.default);
  return Object.fromEntries(Object.entries(members).map(([name, child]) => [name, defaultsOf(child)]));
}
