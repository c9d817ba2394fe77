import type { Change, ChangeEvent, RouteAssignment } from './records';
import { freezeAssignment, type Route } from './route';
import { createRouteBackend, type RouteBackend } from './route-backend';
import { EMPTY_SHARD, shardOf, type Shards } from './shards';
import { countInto, entryOf, viewOf, type EntryCounts, type ToolEntry } from './tool-entry';

/** A tool's route being edited by change events: copies of its lists, the old route's objects reused. */
interface RouteEdit {
  backends: RouteBackend[];
  assignments: RouteAssignment[];
  /** What the table had; undefined for a new tool. */
  before: Route | undefined;
}

/**
 * The shards and counts of a table with the events applied in order. Only the shards of the tools the
 * events change are copied; every other tool keeps its entry, and with it a route already made for the
 * hot path.
 */
export function applyChanges(shards: Shards, counts: EntryCounts, events: readonly ChangeEvent[]): { shards: Shards; counts: EntryCounts } {
  const edits = new Map<string, RouteEdit>();
  const editOf = (tool: string): RouteEdit => {
    let edit = edits.get(tool);
    if (!edit) {
      const e = shards[shardOf(tool)].get(tool);
      const old = e && viewOf(e);
      edit = { backends: old ? [...old.backends] : [], assignments: old ? [...old.assignments] : [], before: old };
      edits.set(tool, edit);
    }
    return edit;
  };
  for (const ev of events) for (const ch of ev.changes) applyChange(editOf, ch);
  return applyEdits(shards, counts, edits);
}

function applyChange(editOf: (tool: string) => RouteEdit, ch: Change): void {
  switch (ch.kind) {
    case 'backend.upsert': {
      const list = editOf(ch.backend.tool).backends;
      const i = list.findIndex((b) => b.id === ch.backend.id);
      const same =
        i >= 0 &&
        list[i].url === ch.backend.url &&
        list[i].source === ch.backend.source &&
        list[i].held === (ch.backend.held === true) &&
        list[i].prefix === (ch.backend.prefix ?? null);
      if (same) break; // a renewal: keep the parsed object
      const rb = createRouteBackend(ch.backend);
      if (rb) upsertBackend(list, rb);
      else if (i >= 0) list.splice(i, 1);
      break;
    }
    case 'backend.remove': {
      const list = editOf(ch.tool).backends;
      const i = list.findIndex((b) => b.id === ch.id);
      if (i >= 0) list.splice(i, 1);
      break;
    }
    case 'assignment.upsert':
      upsertAssignment(editOf(ch.assignment.tool).assignments, freezeAssignment(ch.assignment));
      break;
    case 'assignment.remove': {
      const list = editOf(ch.tool).assignments;
      const i = list.findIndex((a) => a.host === ch.host && a.port === ch.port);
      if (i >= 0) list.splice(i, 1);
      break;
    }
  }
}

function applyEdits(before: Shards, beforeCounts: EntryCounts, edits: ReadonlyMap<string, RouteEdit>): { shards: Shards; counts: EntryCounts } {
  const shards = before.slice();
  const copied = new Set<number>();
  const counts: EntryCounts = { ...beforeCounts };
  for (const [tool, edit] of edits) {
    // A renewal keeps the entry, and with it a route already made for the hot path.
    if (unchanged(edit)) continue;
    const i = shardOf(tool);
    if (!copied.has(i)) {
      copied.add(i);
      shards[i] = new Map(shards[i]);
    }
    const shard = shards[i] as Map<string, ToolEntry>;
    countInto(counts, shard.get(tool), -1);
    if (edit.backends.length === 0 && edit.assignments.length === 0) {
      shard.delete(tool);
      continue;
    }
    const e = entryOf(tool, edit.backends.slice(), edit.assignments.slice());
    shard.set(tool, e);
    countInto(counts, e, 1);
  }
  for (const i of copied) if (shards[i].size === 0) shards[i] = EMPTY_SHARD;
  return { shards, counts };
}

/** Whether the edit holds the very objects the route had: a renewal that changed nothing. */
function unchanged(edit: RouteEdit): boolean {
  const b = edit.before;
  if (!b || b.backends.length !== edit.backends.length || b.assignments.length !== edit.assignments.length) return false;
  return b.backends.every((x, i) => x === edit.backends[i]) && b.assignments.every((x, i) => x === edit.assignments[i]);
}

/** Replaces the backend with the same id in place (round-robin order stays stable) or appends it. */
function upsertBackend(list: RouteBackend[], rb: RouteBackend): void {
  const i = list.findIndex((b) => b.id === rb.id);
  if (i >= 0) list[i] = rb;
  else list.push(rb);
}

function upsertAssignment(list: RouteAssignment[], a: RouteAssignment): void {
  const i = list.findIndex((x) => x.host === a.host && x.port === a.port);
  if (i >= 0) list[i] = a;
  else list.push(a);
}
