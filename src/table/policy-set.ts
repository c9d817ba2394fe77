import { BanIndex } from './ban-index';
import { policyKey, type BlockRecord, type GlobalMaintenanceRecord, type PolicyRecord, type ToolPolicyRecord } from './policy-records';
import type { ChangeEvent } from './records';

/** Bans changed since the last index, past which the next index is made anew rather than from the last. */
const REINDEX_FROM = 1000;

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

  private constructor(
    readonly records: ReadonlyMap<string, PolicyRecord>,
    /** The index of the set this one was made from, and what changed since: the next index is made from it. */
    private from: { index: BanIndex; added: BlockRecord[]; removed: BlockRecord[] } | null = null,
  ) {
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
    if (this.index === null) {
      const f = this.from;
      // Many changes at once (a restore, a bulk load) cost less as a new index than as paths copied one by one.
      const small = f !== null && f.added.length + f.removed.length <= REINDEX_FROM;
      this.index = small ? f.index.withChanges(f.added, f.removed) : BanIndex.of(this.bans);
      this.from = null;
    }
    return this.index;
  }

  /** The set with the events' policy changes applied; this very set when they have none. */
  withChanges(events: readonly ChangeEvent[]): PolicySet {
    let next: Map<string, PolicyRecord> | null = null;
    const added: BlockRecord[] = [];
    const removed: BlockRecord[] = [];
    const put = (key: string, record: PolicyRecord | null) => {
      next ??= new Map(this.records);
      const before = next.get(key);
      if (before?.kind === 'block') removed.push(before);
      if (record === null) next.delete(key);
      else {
        next.set(key, record);
        if (record.kind === 'block') added.push(record);
      }
    };
    for (const ev of events) {
      for (const ch of ev.changes) {
        if (ch.kind === 'policy.upsert') put(policyKey(ch.policy), ch.policy);
        else if (ch.kind === 'policy.remove') put(ch.key, null);
      }
    }
    if (next === null) return this;
    const map: Map<string, PolicyRecord> = next;
    if (map.size === 0) return PolicySet.EMPTY;
    // A ban list already indexed is changed, not indexed again: an added range costs one path of the trie.
    const base = this.index ? { index: this.index, added: [], removed: [] } : this.from;
    return new PolicySet(map, base ? { index: base.index, added: [...base.added, ...added], removed: [...base.removed, ...removed] } : null);
  }
}
