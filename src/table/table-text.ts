import { isRoutable } from './backend-target';
import type { RouteRecord, TableVersion } from './records';
import { RouteTable } from './route-table';
import type { RouteTableBuilder } from './table-builder';

/**
 * The route table as text, for reading and for debugging: one line per backend and per assignment, after a
 * line with the table's epoch and version.
 *
 *     table 5f0c2a 42
 *     backend web web-1 http://127.0.0.1:4100 registered
 *     backend web web-2 http://127.0.0.1:4101 discovered held
 *     backend web api-1 http://127.0.0.1:4102 registered prefix=/api
 *     assignment web 127.0.0.1 4100
 *
 * Tools come in name order (by UTF-16 code unit, whatever the locale); a tool's backends and assignments
 * in the table's own order, which is the round-robin order. So equal tables give equal text, and
 * parseTable(dumpTable(t)) is a table equal to t (builtAt aside). A field that is not plain printable
 * ASCII (a space, a quote, a backslash, anything else, or nothing at all) is written as a JSON string,
 * quotes, backslashes and every character outside printable ASCII escaped: a line never carries a control
 * character to a terminal. parseTable
 * also takes blank lines and lines starting with `#`, and skips them.
 */

const HEADER = 'table';
const BACKEND = 'backend';
const ASSIGNMENT = 'assignment';
const HELD = 'held';
/** A sub-route backend's last field: `prefix=/api`. */
const PREFIX = 'prefix=';

/** A field written as is: printable ASCII without space, quote or backslash. */
const BARE = /^[!#-[\]-~]+$/;

function field(s: string): string {
  if (BARE.test(s)) return s;
  const escaped = s.replace(/["\\]/g, '\\$&').replace(/[^ -~]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}"`;
}

function headerLine(t: RouteTable): string {
  return `${HEADER} ${field(t.epoch)} ${t.version}`;
}

/** Each tool's lines, by tool name. */
function linesByTool(t: RouteTable): Map<string, string[]> {
  const routes = [...t.tools()].sort((a, b) => byCodeUnit(a.tool, b.tool));
  const out = new Map<string, string[]>();
  for (const r of routes) {
    const tool = field(r.tool);
    const lines = r.backends.map(
      (b) => `${BACKEND} ${tool} ${field(b.id)} ${field(b.url)} ${b.source}${b.held ? ` ${HELD}` : ''}${b.prefix !== null ? ` ${field(PREFIX + b.prefix)}` : ''}`,
    );
    for (const a of r.assignments) lines.push(`${ASSIGNMENT} ${tool} ${field(a.host)} ${a.port}`);
    out.set(r.tool, lines);
  }
  return out;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The table as text, one line each, ending in a newline. */
export function dumpTable(t: RouteTable): string {
  const lines = [headerLine(t)];
  for (const toolLines of linesByTool(t).values()) lines.push(...toolLines);
  return `${lines.join('\n')}\n`;
}

/**
 * What changed from `a` to `b`, as lines of the text form: `- line` for one only `a` has, `+ line` for one
 * only `b` has; the table line first, then tool by tool in name order. A change of order within a tool's
 * lists alone is not shown. Empty when the tables hold the same routes at the same version.
 */
export function diffTables(a: RouteTable, b: RouteTable): string[] {
  const out: string[] = [];
  const [ha, hb] = [headerLine(a), headerLine(b)];
  if (ha !== hb) out.push(`- ${ha}`, `+ ${hb}`);
  const before = linesByTool(a);
  const after = linesByTool(b);
  const tools = [...new Set([...before.keys(), ...after.keys()])].sort(byCodeUnit);
  for (const tool of tools) {
    const was = before.get(tool) ?? [];
    const is = after.get(tool) ?? [];
    const kept = new Set(is);
    const had = new Set(was);
    for (const line of was) if (!kept.has(line)) out.push(`- ${line}`);
    for (const line of is) if (!had.has(line)) out.push(`+ ${line}`);
  }
  return out;
}

/**
 * The table the text describes. Records are taken as a store's read hands them over (a backend with an id
 * already seen replaces it in place); anything that is not a line of the form, and a backend URL the proxy
 * could not route to, is an error naming the line.
 */
export function parseTable(text: string): RouteTable {
  const builder = RouteTable.builder();
  let version: TableVersion | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = fieldsOf(line, i + 1);
    if (version === null) version = versionOf(fields, i + 1);
    else addRecord(builder, fields, i + 1);
  }
  if (version === null) throw new Error(`route table text: no "${HEADER} <epoch> <version>" line`);
  return builder.build(version);
}

function lineError(n: number, why: string): Error {
  return new Error(`route table text, line ${n}: ${why}`);
}

/** A line's fields: bare words and JSON strings, one space or more apart. */
function fieldsOf(line: string, n: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let end = i;
    if (line[i] === '"') {
      end++;
      while (end < line.length && line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (end >= line.length) throw lineError(n, 'a quoted field is not closed');
      out.push(quoted(line.slice(i, ++end), n));
    } else {
      while (end < line.length && line[end] !== ' ') end++;
      const word = line.slice(i, end);
      if (!BARE.test(word)) throw lineError(n, `${JSON.stringify(word)} must be quoted`);
      out.push(word);
    }
    if (end < line.length && line[end] !== ' ') throw lineError(n, 'a space must follow a quoted field');
    i = end;
  }
  return out;
}

function quoted(s: string, n: number): string {
  try {
    return JSON.parse(s) as string;
  } catch {
    throw lineError(n, `${s} is not a JSON string`);
  }
}

function versionOf(f: string[], n: number): TableVersion {
  if (f[0] !== HEADER || f.length !== 3) throw lineError(n, `the first line must be "${HEADER} <epoch> <version>"`);
  return { epoch: f[1], version: integer(f[2], Number.MAX_SAFE_INTEGER, n) };
}

function addRecord(builder: RouteTableBuilder, f: string[], n: number): void {
  const [kind, tool] = f;
  const marks = backendMarks(f);
  if (kind === BACKEND && marks) {
    const [, , id, url, source] = f;
    if (source !== 'registered' && source !== 'discovered') throw lineError(n, `source ${JSON.stringify(source)} is neither registered nor discovered`);
    if (!isRoutable(url)) throw lineError(n, `${JSON.stringify(url)} is not a URL the proxy can route to`);
    const record: RouteRecord = { tool, id, url, source };
    if (marks.held) record.held = true;
    if (marks.prefix !== undefined) record.prefix = marks.prefix;
    builder.backend(record);
  } else if (kind === ASSIGNMENT && f.length === 4) {
    builder.assignment({ tool, host: f[2], port: integer(f[3], 65535, n) });
  } else {
    throw lineError(n, `not "${BACKEND} <tool> <id> <url> <source> [${HELD}] [${PREFIX}<path>]" nor "${ASSIGNMENT} <tool> <host> <port>"`);
  }
}

/** A backend line's fields after its source, `held` then `prefix=<path>`, each optional; null when they are not that. */
function backendMarks(f: string[]): { held: boolean; prefix?: string } | null {
  if (f.length < 5 || f.length > 7) return null;
  let i = 5;
  const held = f[i] === HELD;
  if (held) i++;
  const prefix = i < f.length && f[i].startsWith(PREFIX) ? f[i++].slice(PREFIX.length) : undefined;
  return i === f.length ? { held, prefix } : null;
}

function integer(s: string, max: number, n: number): number {
  const v = /^(?:0|[1-9]\d*)$/.test(s) ? Number(s) : NaN;
  if (!(v <= max)) throw lineError(n, `${JSON.stringify(s)} is not a whole number from 0 to ${max}`);
  return v;
}
