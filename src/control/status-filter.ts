import { TOOL_STATES, type StatusReport, type StatusTool, type ToolState } from '../client/status-report';
import { parseState } from './tool-state';

/** How tools may be ordered: by name, most pressing state first, busiest first, highest 5xx ratio first. */
export const SORT_KEYS = ['name', 'state', 'rps', 'errors'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** Which tools a report shows, and in which order: the status page's, /status.json's and the CLI's filter. */
export interface StatusQuery {
  /** A part of the name, or a glob (`*`, `?`) the whole name must match; '' matches every tool. */
  tool: string;
  /** Any of these states; none: every state. */
  states: ToolState[];
  sort: SortKey;
  /** Tools shown at most (null: all), from the `offset`-th match. */
  limit: number | null;
  offset: number;
}

export const EVERY_TOOL: Readonly<StatusQuery> = Object.freeze({ tool: '', states: [], sort: 'name', limit: null, offset: 0 });

export const PATTERN_MAX = 256;
export const LIMIT_MAX = 100_000;

/** A filter value that cannot be read: the field it came in and why. */
export class QueryError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function wholeNumber(field: string, raw: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new QueryError(field, `${field} must be a whole number in ${min}..${max}`);
  return n;
}

/** Raw filter values as they came (a URL's parameters, a command's flags); states may be repeated or comma-separated. */
export interface RawQuery {
  tool?: string;
  state?: readonly string[];
  sort?: string;
  limit?: string;
  offset?: string;
}

export function parseStatusQuery(raw: RawQuery, defaults: Readonly<StatusQuery> = EVERY_TOOL): StatusQuery {
  const tool = (raw.tool ?? defaults.tool).trim().toLowerCase();
  if (tool.length > PATTERN_MAX) throw new QueryError('tool', `tool must be at most ${PATTERN_MAX} characters`);
  const states: ToolState[] = [];
  for (const part of (raw.state ?? []).flatMap((s) => s.split(','))) {
    if (part.trim() === '') continue;
    const state = parseState(part);
    if (!state) throw new QueryError('state', `state must be one of ${TOOL_STATES.join(', ')}`);
    if (!states.includes(state)) states.push(state);
  }
  const sort = raw.sort === undefined || raw.sort === '' ? defaults.sort : raw.sort;
  if (!(SORT_KEYS as readonly string[]).includes(sort)) throw new QueryError('sort', `sort must be one of ${SORT_KEYS.join(', ')}`);
  const limit = raw.limit === undefined || raw.limit === '' ? defaults.limit : wholeNumber('limit', raw.limit, 1, LIMIT_MAX);
  const offset = raw.offset === undefined || raw.offset === '' ? defaults.offset : wholeNumber('offset', raw.offset, 0, 1e9);
  return { tool, states: states.length ? states : [...defaults.states], sort: sort as SortKey, limit, offset };
}

/** A query's values as URL parameters, the defaults left out: the links of the page. */
export function queryParams(q: StatusQuery, defaults: Readonly<StatusQuery> = EVERY_TOOL): URLSearchParams {
  const p = new URLSearchParams();
  if (q.tool) p.set('tool', q.tool);
  for (const s of q.states) p.append('state', s);
  if (q.sort !== defaults.sort) p.set('sort', q.sort);
  if (q.limit !== defaults.limit && q.limit !== null) p.set('limit', String(q.limit));
  if (q.offset !== 0) p.set('offset', String(q.offset));
  return p;
}

/**
 * Whether `text` matches the glob `pattern` (`*` any run, `?` one character), in time linear in their
 * lengths' product: the pattern comes from anyone who reaches the control port, so no backtracking regex.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** The name test of a pattern: a glob when it has `*` or `?`, else a part of the name. Tool names are lower-case. */
export function toolMatcher(pattern: string): (tool: string) => boolean {
  const p = pattern.trim().toLowerCase();
  if (p === '') return () => true;
  if (/[*?]/.test(p)) return (tool) => globMatch(p, tool);
  return (tool) => tool.includes(p);
}

const byName = (a: StatusTool, b: StatusTool): number => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0);
const rps = (t: StatusTool): number => t.traffic?.requestsPerSecond ?? -1;
const ratio = (t: StatusTool): number => t.traffic?.serverErrorRatio ?? -1;

const ORDERS: Record<SortKey, (a: StatusTool, b: StatusTool) => number> = {
  name: byName,
  state: (a, b) => TOOL_STATES.indexOf(a.state) - TOOL_STATES.indexOf(b.state) || byName(a, b),
  rps: (a, b) => rps(b) - rps(a) || byName(a, b),
  errors: (a, b) => ratio(b) - ratio(a) || rps(b) - rps(a) || byName(a, b),
};

/** The tools a query selects, in its order, and how many matched before the page was cut. */
export function selectTools(tools: readonly StatusTool[], q: Readonly<StatusQuery>): { matched: number; tools: StatusTool[] } {
  const named = toolMatcher(q.tool);
  const matched = tools.filter((t) => (q.states.length === 0 || q.states.includes(t.state)) && named(t.tool));
  matched.sort(ORDERS[q.sort]);
  const end = q.limit === null ? undefined : q.offset + q.limit;
  return { matched: matched.length, tools: q.offset === 0 && end === undefined ? matched : matched.slice(q.offset, end) };
}

/** The report cut to what a filter selects, saying so (`selection`): /status.json's and the CLI's filtered answer. */
export function selectReport(r: StatusReport, q: StatusQuery): StatusReport {
  const { matched, tools } = selectTools(r.tools, q);
  return { ...r, selection: { tool: q.tool, states: q.states, sort: q.sort, matched, offset: q.offset, limit: q.limit }, tools };
}

/** Whether any filter value was given at all (an unfiltered /status.json lists every tool, as it always has). */
export function anyFilter(raw: RawQuery): boolean {
  return [raw.tool, raw.sort, raw.limit, raw.offset].some((v) => v !== undefined) || (raw.state ?? []).length > 0;
}
