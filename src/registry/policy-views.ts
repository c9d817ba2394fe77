import type { BlockRecord, GlobalMaintenanceRecord, Maintenance, ToolPolicyRecord } from '../table/policy-records';

// The API's form of the policy records: times as ISO-8601 strings, the store's `kind` left out.

const iso = (ms: number) => new Date(ms).toISOString();

export function blockView(b: BlockRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { id: b.id };
  if (b.cidr !== undefined) out.cidr = b.cidr;
  if (b.userAgent !== undefined) out.userAgent = b.userAgent;
  if (b.tool !== undefined) out.tool = b.tool;
  if (b.reason !== undefined) out.reason = b.reason;
  out.updatedAt = iso(b.updatedAt);
  if (b.expiresAt !== undefined) out.expiresAt = iso(b.expiresAt);
  return out;
}

function maintenanceView(m: Maintenance): Record<string, unknown> {
  return m.until === undefined ? { message: m.message } : { message: m.message, until: iso(m.until) };
}

export function globalMaintenanceView(m: GlobalMaintenanceRecord): Record<string, unknown> {
  return { ...maintenanceView(m), updatedAt: iso(m.updatedAt) };
}

export function toolPolicyView(p: ToolPolicyRecord): Record<string, unknown> {
  const { kind: _kind, maintenance, updatedAt, ...rest } = p;
  const out: Record<string, unknown> = { ...rest };
  if (maintenance) out.maintenance = maintenanceView(maintenance);
  out.updatedAt = iso(updatedAt);
  return out;
}
