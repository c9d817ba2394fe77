import { PrefixTrie } from '../net/prefix-trie';
import type { BlockRecord } from './policy-records';
import { UserAgentMatcher } from './user-agent-matcher';

/** Whether a ban applies to a request for `tool` at `now`: its scope and its expiry. */
function applies(ban: BlockRecord, tool: string, now: number): boolean {
  return (ban.tool === undefined || ban.tool === tool) && (ban.expiresAt === undefined || now < ban.expiresAt);
}

/**
 * The bans of a table, ready for the hot path: address ranges in a prefix trie (a lookup walks the
 * address's bits, whatever the number of bans), User-Agent patterns in a UserAgentMatcher. Expired bans
 * stay in the index until the registry removes them; a lookup passes over them.
 */
export class BanIndex {
  private readonly ranges = new PrefixTrie<BlockRecord>();
  private readonly patterns: readonly BlockRecord[];
  private readonly agents: UserAgentMatcher;
  readonly size: number;

  constructor(bans: readonly BlockRecord[]) {
    const patterns: BlockRecord[] = [];
    for (const b of bans) {
      if (b.cidr !== undefined) this.ranges.add(b.cidr, b);
      else if (b.userAgent !== undefined) patterns.push(b);
    }
    this.patterns = patterns;
    this.agents = new UserAgentMatcher(patterns.map((b) => b.userAgent!));
    this.size = this.ranges.size + this.agents.size;
  }

  /** The ban on the client's address that applies to a request for `tool` now; undefined: none. */
  byAddress(address: string, tool: string, now: number): BlockRecord | undefined {
    return this.ranges.find(address, (b) => applies(b, tool, now));
  }

  /** The ban on this User-Agent that applies to a request for `tool` now; undefined: none. */
  byUserAgent(userAgent: string, tool: string, now: number): BlockRecord | undefined {
    for (const i of this.agents.matches(userAgent)) {
      const b = this.patterns[i];
      if (applies(b, tool, now)) return b;
    }
    return undefined;
  }
}
