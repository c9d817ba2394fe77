import { BanIndex } from './ban-index';
import { policyKey, type BlockRecord, type GlobalMaintenanceRecord, type PolicyRecord, type ToolPolicyRecord } from './policy-records';
import type { ChangeEvent } from './records';

/**
 * The operator's policies of one table: immutable, replaced whole when a policy changes, shared by every
 * table in between (a route change keeps the same PolicySet). The proxy's hot path reads `empty` first:
 * a table without policies costs a request one property read.
 */
export class PolicySet {
  static readonly EMPTY = new PolicySet(new Map());

  /** No ban, no tool policy, no maintenance. */
  readonly empty: boolean;
  readonly maintenance: GlobalMaintenanceRecord | null;
  /** Tool policies by tool name. */
  readonly tools: ReadonlyMap<string, ToolPolicyRecord>;
  readonly bans: readonly BlockRecord[];
  /** Made on its first question: a registry following the table never asks. */
  private index: BanIndex | null = null;

  private constructor(readonly records: ReadonlyMap<string, PolicyRecord>) {
    const tools = new Map<string, ToolPolicyRecord>();
    const bans: BlockRecord[] = [];
    let maintenance: GlobalMaintenanceRecord | null = null;
    for (const r of records.values()) {
      if (r.kind === 'tool') tools.set(r.tool, r);
      else if (r.kind === 'block') bans.push(r);
      else maintenance = r;
    }
    this.tools = tools;
    this.bans = bans;
    this.maintenance = maintenance;
    this.empty = records.size === 0;
  }

  static of(records: Iterable<PolicyRecord>): PolicySet {
    const map = new Map<string, PolicyRecord>();
    for (const r of records) map.set(policyKey(r), r);
    return map.size === 0 ? PolicySet.EMPTY : new PolicySet(map);
  }

  get size(): number {
    return this.records.size;
  }

  get(key: string): PolicyRecord | undefined {
    return this.records.get(key);
  }

  banIndex(): BanIndex {
    return (this.index ??= new BanIndex(this.bans));
  }

  /** The set with the events' policy changes applied; this very set when they have none. */
  withChanges(events: readonly ChangeEvent[]): PolicySet {
    let next: Map<string, PolicyRecord> | null = null;
    for (const ev of events) {
      for (const ch of ev.changes) {
        if (ch.kind === 'policy.upsert') (next ??= new Map(this.records)).set(policyKey(ch.policy), ch.policy);
        else if (ch.kind === 'policy.remove') (next ??= new Map(this.records)).delete(ch.key);
      }
    }
    if (next === null) return this;
    return next.size === 0 ? PolicySet.EMPTY : new PolicySet(next);
  }
}
