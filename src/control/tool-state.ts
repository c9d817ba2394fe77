import { TOOL_STATES, type StatusTool, type ToolState } from '../client/status-report';

/** How the page and the terminal write a state. */
export function stateText(state: ToolState): string {
  return state === 'not_running' ? 'not running' : state;
}

/** A state as a person may write it in a filter: `not_running`, `not-running` or `not running`. */
export function parseState(s: string): ToolState | null {
  const norm = s.trim().toLowerCase().replace(/[\s-]+/g, '_');
  return (TOOL_STATES as readonly string[]).includes(norm) ? (norm as ToolState) : null;
}

/**
 * The one state a tool is shown in, the most pressing first (TOOL_STATES' order): lost, then held (any of
 * its backends: one whose heartbeats stopped is most likely dead, even beside live ones), not running (no
 * live backend), discovered (a live backend found by fallback discovery), else live.
 */
export function toolState(t: Pick<StatusTool, 'backends'>, lost: boolean): ToolState {
  if (lost) return 'lost';
  let live = 0;
  let discovered = false;
  for (const b of t.backends) {
    if (b.held) return 'held';
    live++;
    if (b.source === 'discovered') discovered = true;
  }
  if (live === 0) return 'not_running';
  return discovered ? 'discovered' : 'live';
}

/** Tools by state, every state present (0 when none). */
export function stateCounts(tools: readonly Pick<StatusTool, 'state'>[]): Record<ToolState, number> {
  const counts = Object.fromEntries(TOOL_STATES.map((s) => [s, 0])) as Record<ToolState, number>;
  for (const t of tools) counts[t.state]++;
  return counts;
}
