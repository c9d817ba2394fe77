// The operator's policies as the store keeps them and the change feed carries them: bans, per-tool
// policies and the global maintenance switch. They travel with the route table (one version history),
// so a proxy applies a policy within the same bound as a route, and keeps the last ones it had while the
// store is away. Times are epoch milliseconds.

/** A ban: requests from an address range, or with a User-Agent matching a pattern, are refused (403). */
export interface BlockRecord {
  kind: 'block';
  id: string;
  /** An address range ("203.0.113.0/24", "2001:db8::/32", or one address). Exactly one of cidr and userAgent. */
  cidr?: string;
  /** A JavaScript regular expression (no flags) tested against the User-Agent header. */
  userAgent?: string;
  /** Only requests for this tool; absent: every tool. */
  tool?: string;
  /** The operator's note; shown on the refusal page only when proxy.banReasonOnPage is on. */
  reason?: string;
  updatedAt: number;
  /** When the ban stops applying; absent: until it is removed. */
  expiresAt?: number;
}

/** A token bucket per client address: `perClientPerSecond` refill, at most `burst` requests at once. */
export interface RateLimit {
  perClientPerSecond: number;
  burst: number;
}

/** A tool (or every tool) taken down on purpose: a 503 page with the message, Retry-After from `until`. */
export interface Maintenance {
  message: string;
  /** When it is expected to end; absent: unknown. */
  until?: number;
}

/** What the proxies apply to one tool's requests; every field is optional. */
export interface ToolPolicyRecord {
  kind: 'tool';
  tool: string;
  /** In-flight requests per proxy process; over it: 503 with Retry-After. */
  maxConcurrent?: number;
  rateLimit?: RateLimit;
  /** Larger request bodies are refused with 413. */
  maxBodyBytes?: number;
  /** The proxy's response timeout for this tool (bounded by proxy.maxResponseTimeoutSeconds). */
  responseTimeoutSeconds?: number;
  maintenance?: Maintenance;
  /** Path-routed requests reach the backend without `/<tool>` (X-Forwarded-Prefix says what it was). */
  stripPrefix?: boolean;
  updatedAt: number;
}

/** The outage switch: every tool answers the maintenance page at once. */
export interface GlobalMaintenanceRecord extends Maintenance {
  kind: 'maintenance';
  updatedAt: number;
}

export type PolicyRecord = BlockRecord | ToolPolicyRecord | GlobalMaintenanceRecord;

/** The record's key in the store: one record per ban id, per tool, and one global maintenance record. */
export function policyKey(p: PolicyRecord): string {
  switch (p.kind) {
    case 'block':
      return blockKey(p.id);
    case 'tool':
      return toolPolicyKey(p.tool);
    case 'maintenance':
      return MAINTENANCE_KEY;
  }
}

export function blockKey(id: string): string {
  return `block:${id}`;
}

export function toolPolicyKey(tool: string): string {
  return `tool:${tool}`;
}

export const MAINTENANCE_KEY = 'maintenance';
