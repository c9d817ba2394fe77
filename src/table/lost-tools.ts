import type { ChangeEvent } from './records';
import type { RouteTable } from './route-table';

/**
 * Tools the store lost without anyone removing them: they had a backend or an assignment in the table
 * before the store lost its state (a new epoch, or a version that went back), and the store has neither
 * since. The carry-over keeps routing their old backends for a while, so route counts do not show the
 * loss; this set does, from the loss until each tool is back in the store or is removed on purpose.
 */
export class LostTools {
  private readonly tools = new Set<string>();
  private sorted: readonly string[] = [];
  private dirty = false;

  get size(): number {
    return this.tools.size;
  }

  /** The lost tools by name (sorted once per change of the set, not once per scrape). */
  names(): readonly string[] {
    if (this.dirty) {
      this.sorted = [...this.tools].sort();
      this.dirty = false;
    }
    return this.sorted;
  }

  /** The store lost the state `old` was read from: each tool of `old` (it has a backend or an assignment) is lost. */
  addTable(old: RouteTable): void {
    old.forEachToolCounts((tool) => {
      if (this.tools.has(tool)) return;
      this.tools.add(tool);
      this.dirty = true;
    });
  }

  /** Tools the store's table holds again (a full read) leave the set. */
  dropPresent(inStore: (tool: string) => boolean): void {
    for (const tool of this.tools) {
      if (inStore(tool)) this.drop(tool);
    }
  }

  /**
   * Changes the store published. An upsert means the store has the tool again. A deregistration or a port
   * release means someone removed it on purpose; a lost tool has nothing else in the store (it would have
   * left the set), so that was its last backend or assignment. An expiry or a replacement is no decision
   * about the tool: it stays lost.
   */
  applyChanges(events: readonly ChangeEvent[]): void {
    if (this.tools.size === 0) return;
    for (const ev of events) {
      for (const ch of ev.changes) {
        switch (ch.kind) {
          case 'backend.upsert':
            this.drop(ch.backend.tool);
            break;
          case 'assignment.upsert':
            this.drop(ch.assignment.tool);
            break;
          case 'backend.remove':
            if (ch.reason === 'deregistered') this.drop(ch.tool);
            break;
          case 'assignment.remove':
            this.drop(ch.tool);
            break;
        }
      }
    }
  }

  private drop(tool: string): void {
    if (this.tools.delete(tool)) this.dirty = true;
  }
}
