import { PrefixTrie } from '../net/prefix-trie';
import type { BlockRecord } from './policy-records';
import { UserAgentMatcher } from './user-agent-matcher';

/** Whether a ban applies to a request for `tool` at `now`: its scope and its expiry. */
function applies(ban: BlockRecord, tool: string, now: number): boolean {
  return (ban.tool === undefined || ban.tool === tool) && (ban.expiresAt === undefined || now < ban.expiresAt);
}

/** The User-Agent bans and their matcher, made again together whenever one of them changes. */
interface Agents {
  patterns: readonly BlockRecord[];
  matcher: UserAgentMatcher;
}

function agentsOf(patterns: readonly BlockRecord[]): Agents {
  return { patterns, matcher: new UserAgentMatcher(patterns.map((b) => b.userAgent!)) };
}

/**
 * The bans of a table, ready for the hot path: address ranges in a prefix trie (a lookup walks the
 * address's bits, whatever the number of bans), User-Agent patterns in a UserAgentMatcher. Expired bans
 * stay in the index until the registry removes them; a lookup passes over them. Immutable: a change of
 * the bans makes the next index from this one (withChanges), the trie by copying one path per range.
 */
export class BanIndex {
  readonly size: number;

  private constructor(
    private readonly ranges: PrefixTrie<BlockRecord>,
    private readonly agents: Agents,
  ) {
    this.size = ranges.size + agents.matcher.size;
  }

  static of(bans: readonly BlockRecord[]): BanIndex {
    const ranges = new PrefixTrie<BlockRecord>();
    const patterns: BlockRecord[] = [];
    for (const b of bans) {
      if (b.cidr !== undefined) ranges.add(b.cidr, b);
      else if (b.userAgent !== undefined) patterns.push(b);
    }
    return new BanIndex(ranges, agentsOf(patterns));
  }

  /**
   * The index with `removed` taken out and `added` put in (records by identity, in the order the changes
   * came: a record both added and removed came and went, and was never in this index).
   */
  withChanges(addedInOrder: readonly BlockRecord[], removedInOrder: readonly BlockRecord[]): BanIndex {
    const removedSet = new Set(removedInOrder);
    const cameAndWent = new Set(addedInOrder.filter((b) => removedSet.has(b)));
    const added = cameAndWent.size ? addedInOrder.filter((b) => !cameAndWent.has(b)) : addedInOrder;
    const removed = cameAndWent.size ? removedInOrder.filter((b) => !cameAndWent.has(b)) : removedInOrder;
    let ranges = this.ranges;
    let agentsChanged = false;
    for (const b of removed) {
      if (b.cidr !== undefined) ranges = ranges.without(b.cidr, b);
      else agentsChanged = true;
    }
    for (const b of added) {
      if (b.cidr !== undefined) ranges = ranges.with(b.cidr, b);
      else agentsChanged = true;
    }
    if (!agentsChanged) return new BanIndex(ranges, this.agents);
    const gone = new Set(removed);
    const patterns = this.agents.patterns.filter((b) => !gone.has(b));
    for (const b of added) if (b.cidr === undefined && b.userAgent !== undefined) patterns.push(b);
    return new BanIndex(ranges, agentsOf(patterns));
  }

  /** The ban on the client's address that applies to a request for `tool` now; undefined: none. */
  byAddress(address: string, tool: string, now: number): BlockRecord | undefined {
    return this.ranges.find(address, (b) => applies(b, tool, now));
  }

  /** The ban on this User-Agent that applies to a request for `tool` now; undefined: none. */
  byUserAgent(userAgent: string, tool: string, now: number): BlockRecord | undefined {
    for (const i of this.agents.matcher.matches(userAgent)) {
      const b = this.agents.patterns[i];
      if (applies(b, tool, now)) return b;
    }
    return undefined;
  }
}
