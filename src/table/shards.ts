import type { ToolEntry } from './tool-entry';

/**
 * The table's tools are spread over this many maps by a hash of the name: an update copies the shards
 * of the tools it changes, not one map of every tool (at 100,000 tools that copy took tens of ms per
 * change, on the event loop, between the API's answer and the route: bench/proxy.ts).
 */
const SHARD_BITS = 8;
export const SHARDS = 1 << SHARD_BITS;

/** A built table's maps, one per shard; never changed once the table is handed out. */
export type Shards = readonly ReadonlyMap<string, ToolEntry>[];

/** Stands for every empty shard of every table. */
export const EMPTY_SHARD: ReadonlyMap<string, ToolEntry> = new Map();

/** FNV-1a of the tool name; its top bits pick the shard. */
export function shardOf(tool: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tool.length; i++) h = Math.imul(h ^ tool.charCodeAt(i), 0x01000193);
  return h >>> (32 - SHARD_BITS);
}
