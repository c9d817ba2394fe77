import { STATUS_BANS_SHOWN, type StatusBan, type StatusPolicies, type StatusReport, type StatusToolPolicy } from '../client/status-report';
import type { BlockRecord, Maintenance, PolicyRecord, ToolPolicyRecord } from '../table/policy-records';

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function maintenanceOf(m: Maintenance): { message: string; until: string | null } {
  return { message: m.message, until: iso(m.until) };
}

function banOf(b: BlockRecord): StatusBan {
  const out: StatusBan = { id: b.id, expiresAt: iso(b.expiresAt) };
  if (b.cidr !== undefined) out.cidr = b.cidr;
  if (b.userAgent !== undefined) out.userAgent = b.userAgent;
  if (b.tool !== undefined) out.tool = b.tool;
  if (b.reason !== undefined) out.reason = b.reason;
  return out;
}

function toolPolicyOf(p: ToolPolicyRecord): StatusToolPolicy {
  const { kind: _kind, updatedAt: _at, maintenance, ...rest } = p;
  return maintenance ? { ...rest, maintenance: maintenanceOf(maintenance) } : rest;
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** The report's policies from the records in force at `now` (expired bans left out). */
export function statusPolicies(records: Iterable<PolicyRecord>, now: number): StatusPolicies {
  const bans: BlockRecord[] = [];
  const tools: ToolPolicyRecord[] = [];
  let maintenance: StatusPolicies['maintenance'] = null;
  for (const r of records) {
    if (r.kind === 'block') {
      if (r.expiresAt === undefined || r.expiresAt > now) bans.push(r);
    } else if (r.kind === 'tool') tools.push(r);
    else maintenance = maintenanceOf(r);
  }
  bans.sort(byKey((b) => b.id));
  tools.sort(byKey((t) => t.tool));
  return { maintenance, bans: bans.slice(0, STATUS_BANS_SHOWN).map(banOf), banCount: bans.length, tools: tools.map(toolPolicyOf) };
}

/** What a ban matches, in words: `cidr 10.0.0.0/8` or `user-agent /^Bot/`. */
export function banMatchText(b: StatusBan): string {
  return b.cidr !== undefined ? `cidr ${b.cidr}` : `user-agent /${b.userAgent ?? ''}/`;
}

/** A tool policy's settings, in words: `maxConcurrent 10, rateLimit 5/s burst 10, stripPrefix`. */
export function toolPolicyText(p: StatusToolPolicy): string {
  const parts: string[] = [];
  if (p.maintenance) parts.push(`maintenance "${p.maintenance.message}"${p.maintenance.until ? ` until ${p.maintenance.until}` : ''}`);
  if (p.maxConcurrent !== undefined) parts.push(`maxConcurrent ${p.maxConcurrent}`);
  if (p.rateLimit) parts.push(`rateLimit ${p.rateLimit.perClientPerSecond}/s burst ${p.rateLimit.burst}`);
  if (p.maxBodyBytes !== undefined) parts.push(`maxBodyBytes ${p.maxBodyBytes}`);
  if (p.responseTimeoutSeconds !== undefined) parts.push(`responseTimeoutSeconds ${p.responseTimeoutSeconds}`);
  if (p.stripPrefix) parts.push('stripPrefix');
  return parts.length ? parts.join(', ') : '(nothing set)';
}

/** The summary's line: how many bans and tool policies, and the maintenance switch. */
export function policiesSummary(r: StatusReport): string | null {
  const p = r.policies;
  if (!p) return null;
  const parts = [`${p.banCount} ban${p.banCount === 1 ? '' : 's'}`, `${p.tools.length} tool polic${p.tools.length === 1 ? 'y' : 'ies'}`];
  parts.push(p.maintenance ? `MAINTENANCE ON for every tool: "${p.maintenance.message}"${p.maintenance.until ? ` until ${p.maintenance.until}` : ''}` : 'maintenance off');
  return parts.join(', ');
}

/** The bans and tool policies as rows of cells (a header row first each), for the text and HTML forms. */
export function policyRows(p: StatusPolicies): { bans: string[][]; tools: string[][] } {
  return {
    bans: [['BAN', 'MATCHES', 'TOOL', 'UNTIL', 'REASON'], ...p.bans.map((b) => [b.id, banMatchText(b), b.tool ?? '(every tool)', b.expiresAt ?? '(until removed)', b.reason ?? ''])],
    tools: [['TOOL', 'POLICY'], ...p.tools.map((t) => [t.tool, toolPolicyText(t)])],
  };
}
