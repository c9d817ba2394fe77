import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import openapi from '../../docs/openapi.json';
import type { Config } from '../config';
import { RegistryError, badRequest } from './errors';

/**
 * Request validation. The schemas are the components of docs/openapi.json, so the document clients read
 * and the checks the server runs cannot disagree. Everything is compiled once, at construction: the
 * heartbeat path only runs the compiled functions.
 */

type Schema = Record<string, unknown>;

/** Rewrites the document's "#/components/schemas/X" references to this module's "components#/definitions/X". */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node as Schema)) {
    out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', 'components#/definitions/') : rewriteRefs(v);
  }
  return out;
}

export interface HeartbeatBody {
  url: string;
  ttl?: number;
  clientVersion?: string;
  instance?: string;
  restarts?: number;
  prefix?: string;
}

export interface PortRequestBody {
  tool: string;
  host: string;
}

export interface DiscoveryRequestBody {
  host: string;
  port: number;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** An Ajv holding every component schema of the document; `patch` may adjust copies before they are added. */
export function componentsAjv(patch?: (schemas: Record<string, Schema>) => void): Ajv {
  const schemas = rewriteRefs(openapi.components.schemas) as Record<string, Schema>;
  patch?.(schemas);
  // verbose: an error carries its schema, whose bounds the out_of_range message names (without it the
  // message said "between undefined and undefined").
  const ajv = new Ajv({ allErrors: false, strict: true, verbose: true, formats: { 'date-time': ISO_DATE_TIME } });
  ajv.addSchema({ $id: 'components', definitions: schemas });
  return ajv;
}

export function compileComponent<T>(ajv: Ajv, name: string): ValidateFunction<T> {
  return ajv.compile<T>({ $ref: `components#/definitions/${name}` });
}

function fieldOf(instancePath: string): string | null {
  return instancePath ? instancePath.slice(1).replace(/\//g, '.') : null;
}

/** The first schema error as the API's error body: which field, and what is wrong with it. */
function toRegistryError(err: ErrorObject, what: string): RegistryError {
  const field = fieldOf(err.instancePath);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      const full = field ? `${field}.${name}` : name;
      return badRequest('unknown_field', `unknown field "${full}" in ${what}`, full);
    }
    case 'required': {
      const name = String(params.missingProperty);
      const full = field ? `${field}.${name}` : name;
      return badRequest('missing_field', `${what} must have the field "${full}"`, full);
    }
    case 'type': {
      if (field === null) return badRequest('invalid_body', `${what} must be a JSON object`, null);
      // A bounded number's bounds belong in this message too: 1e309 parses as Infinity, which no type allows.
      const bounds = boundsOf((err.parentSchema ?? {}) as Schema);
      return badRequest('invalid_type', `${field} must be ${params.type === 'integer' ? 'an integer' : `a ${String(params.type)}`}${bounds ? ` ${bounds}` : ''}`, field);
    }
    case 'minimum':
    case 'maximum':
      return badRequest('out_of_range', `${field ?? what} must be ${boundsOf((err.parentSchema ?? {}) as Schema) ?? 'within its bounds'}`, field);
    case 'maxLength':
      return badRequest('invalid_value', `${field ?? what} must be at most ${String(params.limit)} characters`, field);
    case 'pattern':
      return badRequest('invalid_value', `${field ?? what} has characters or a shape that is not allowed`, field);
    default:
      return badRequest('invalid_value', `${field ?? what} ${err.message ?? 'is invalid'}`, field);
  }
}

/** "between 5 and 3600", "at least 0", "at most 10" from a schema's bounds; null when it has none. */
function boundsOf(schema: Schema): string | null {
  const min = typeof schema.minimum === 'number' ? schema.minimum : null;
  const max = typeof schema.maximum === 'number' ? schema.maximum : null;
  if (min !== null && max !== null) return `between ${min} and ${max}`;
  if (min !== null) return `at least ${min}`;
  if (max !== null) return `at most ${max}`;
  return null;
}

function instanceError(): RegistryError {
  return badRequest('invalid_value', 'instance must be a string of 8..64 characters of A-Z a-z 0-9 _ -', 'instance');
}

export function check<T>(fn: ValidateFunction<T>, value: unknown, what: string): T {
  if (fn(value)) return value;
  throw toRegistryError(fn.errors![0], what);
}

/** The validators of one server: the TTL bounds come from its configuration. */
export class Validators {
  private readonly toolName: ValidateFunction<string>;
  private readonly backendId: ValidateFunction<string>;
  private readonly tokenIdFn: ValidateFunction<string>;
  private readonly instanceFn: ValidateFunction<string>;
  private readonly heartbeat: ValidateFunction<HeartbeatBody>;
  private readonly portRequest: ValidateFunction<PortRequestBody>;
  private readonly discoveryRequest: ValidateFunction<DiscoveryRequestBody>;

  constructor(leases: Config['leases']) {
    const ajv = componentsAjv((schemas) => {
      const ttl = (schemas.HeartbeatRequest.properties as Record<string, Schema>).ttl;
      ttl.minimum = leases.minTtlSeconds;
      ttl.maximum = leases.maxTtlSeconds;
    });
    this.toolName = compileComponent(ajv, 'ToolName');
    this.backendId = compileComponent(ajv, 'BackendId');
    this.tokenIdFn = compileComponent(ajv, 'TokenId');
    this.instanceFn = compileComponent(ajv, 'Instance');
    this.heartbeat = compileComponent(ajv, 'HeartbeatRequest');
    this.portRequest = compileComponent(ajv, 'PortRequest');
    this.discoveryRequest = compileComponent(ajv, 'DiscoveryRequest');
  }

  tool(value: unknown, field = 'tool'): string {
    if (this.toolName(value)) return value;
    throw badRequest('invalid_value', `${field} must be a lower-case DNS label: a-z, 0-9 and "-", 1..63 characters, not starting or ending with "-"`, field);
  }

  id(value: unknown): string {
    if (this.backendId(value)) return value;
    throw badRequest('invalid_value', 'id must be 1..128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit', 'id');
  }

  tokenId(value: unknown): string {
    if (this.tokenIdFn(value)) return value;
    throw badRequest('invalid_value', 'tokenId must be 12 characters of a-z and 2-7', 'tokenId');
  }

  /** A heartbeat's `instance`, or the `?instance=` of a deregistration. */
  instance(value: unknown): string {
    if (this.instanceFn(value)) return value;
    throw instanceError();
  }

  port(value: unknown): number {
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : NaN;
    if (Number.isInteger(n) && n >= 1 && n <= 65535) return n;
    throw badRequest('invalid_value', 'port must be an integer in 1..65535', 'port');
  }

  heartbeatBody(body: unknown): HeartbeatBody {
    if (this.heartbeat(body)) return body;
    const err = this.heartbeat.errors![0];
    // The schema's own words ("has characters or a shape that is not allowed") would hide the bounds.
    if (err.instancePath === '/instance') throw instanceError();
    throw toRegistryError(err, 'the heartbeat body');
  }

  portRequestBody(body: unknown): PortRequestBody {
    return check(this.portRequest, body, 'the port request body');
  }

  discoveryRequestBody(body: unknown): DiscoveryRequestBody {
    return check(this.discoveryRequest, body, 'the discovery report body');
  }
}
