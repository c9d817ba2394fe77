import type { ValidateFunction } from 'ajv';
import { parseCidr } from '../net/networks';
import type { Config } from '../config';
import type { BlockRecord, Maintenance, RateLimit, ToolPolicyRecord } from '../table/policy-records';
import { badRequest } from './errors';
import { unsafePattern } from './pattern-safety';
import { check, compileComponent, componentsAjv } from './validate';

export interface BlockBody {
  cidr?: string;
  userAgent?: string;
  tool?: string;
  ttl?: number;
  reason?: string;
}

export interface MaintenanceBody {
  message: string;
  until?: string;
}

export interface ToolPolicyBody {
  maxConcurrent?: number;
  rateLimit?: RateLimit;
  maxBodyBytes?: number;
  responseTimeoutSeconds?: number;
  maintenance?: MaintenanceBody;
  stripPrefix?: boolean;
}

/** The request bodies of the policy routes, as records to store; every refusal names its field. */
export class PolicyValidators {
  private readonly blockId: ValidateFunction<string>;
  private readonly block: ValidateFunction<BlockBody>;
  private readonly toolPolicy: ValidateFunction<ToolPolicyBody>;
  private readonly maintenance: ValidateFunction<MaintenanceBody>;

  constructor(proxy: Pick<Config['proxy'], 'maxResponseTimeoutSeconds'>) {
    const ajv = componentsAjv((schemas) => {
      const timeout = (schemas.ToolPolicyRequest.properties as Record<string, Record<string, unknown>>).responseTimeoutSeconds;
      timeout.maximum = proxy.maxResponseTimeoutSeconds;
    });
    this.blockId = compileComponent(ajv, 'BlockId');
    this.block = compileComponent(ajv, 'BlockRequest');
    this.toolPolicy = compileComponent(ajv, 'ToolPolicyRequest');
    this.maintenance = compileComponent(ajv, 'MaintenanceRequest');
  }

  id(value: unknown): string {
    if (this.blockId(value)) return value;
    throw badRequest('invalid_value', 'id must be 1..128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit', 'id');
  }

  /** A ban from its body: exactly one of cidr and userAgent, the pattern shown safe, ttl turned into expiresAt. */
  async blockRecord(id: string, body: unknown, now: () => number): Promise<BlockRecord> {
    const b = check(this.block, body, 'the ban');
    if ((b.cidr === undefined) === (b.userAgent === undefined)) {
      throw badRequest('invalid_body', 'a ban has exactly one of "cidr" (an address range) and "userAgent" (a pattern)', b.cidr === undefined ? 'cidr' : 'userAgent');
    }
    if (b.cidr !== undefined && !parseCidr(b.cidr)) {
      throw badRequest('invalid_value', 'cidr must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24 or 2001:db8::/32 (prefix 0..32 or 0..128)', 'cidr');
    }
    if (b.userAgent !== undefined) {
      const why = await unsafePattern(b.userAgent);
      if (why) throw badRequest('unsafe_pattern', `userAgent ${why}`, 'userAgent');
    }
    // The time of the write, after the check: a ttl counts from when the ban is stored.
    const at = now();
    const record: BlockRecord = { kind: 'block', id, updatedAt: at };
    if (b.cidr !== undefined) record.cidr = b.cidr;
    if (b.userAgent !== undefined) record.userAgent = b.userAgent;
    if (b.tool !== undefined) record.tool = b.tool;
    if (b.reason !== undefined) record.reason = b.reason;
    if (b.ttl !== undefined) record.expiresAt = at + b.ttl * 1000;
    return record;
  }

  maintenanceOf(body: unknown, field: string | null): Maintenance {
    const m = field === null ? check(this.maintenance, body, 'the maintenance body') : (body as MaintenanceBody);
    const out: Maintenance = { message: m.message };
    if (m.until !== undefined) {
      const until = Date.parse(m.until);
      if (!Number.isFinite(until)) throw badRequest('invalid_value', `${field ? `${field}.` : ''}until must be an ISO-8601 date-time`, field ? `${field}.until` : 'until');
      out.until = until;
    }
    return out;
  }

  toolPolicyRecord(tool: string, body: unknown, now: number): ToolPolicyRecord {
    const b = check(this.toolPolicy, body, 'the tool policy');
    const record: ToolPolicyRecord = { kind: 'tool', tool, updatedAt: now };
    if (b.maxConcurrent !== undefined) record.maxConcurrent = b.maxConcurrent;
    if (b.rateLimit !== undefined) record.rateLimit = { perClientPerSecond: b.rateLimit.perClientPerSecond, burst: b.rateLimit.burst };
    if (b.maxBodyBytes !== undefined) record.maxBodyBytes = b.maxBodyBytes;
    if (b.responseTimeoutSeconds !== undefined) record.responseTimeoutSeconds = b.responseTimeoutSeconds;
    if (b.maintenance !== undefined) record.maintenance = this.maintenanceOf(b.maintenance, 'maintenance');
    if (b.stripPrefix !== undefined) record.stripPrefix = b.stripPrefix;
    return record;
  }
}
