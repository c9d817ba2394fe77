import { RegistryClient, RegistryHttpError, type ToolListing } from '../client/registry-client';
import { countsOf, type StatusReport, type StatusTool } from '../control/status-data';
import { QueryError, anyFilter, parseStatusQuery, selectReport, type RawQuery, type StatusQuery } from '../control/status-filter';
import { policyRows } from '../control/status-policies';
import { BACKEND_COLUMNS, TOOL_COLUMNS, assignmentsText, summaryPairs, toolBackendRows, toolCells } from '../control/status-table';
import { emptyTool, withLostTools } from '../control/status-tools';
import { stateCounts, stateText, toolState } from '../control/tool-state';
import { NO_TRAFFIC } from '../control/traffic-window';
import { clientDefaults } from '../client/defaults';
import { parseFlags, usageError } from '../client/flags';
import { tokenFrom } from '../client/token-source';

/**
 * The registry's answer may come from anywhere; a control character in a client version must not move
 * the operator's cursor or recolour their terminal.
 */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/**
 * Tools as the API lists them, with what only the registry process's status report knows: the passive
 * health of the same backend, which tools the store lost, each tool's link and traffic (where that
 * process runs a proxy).
 */
function toolsFromApi(listing: ToolListing[], report: StatusReport | null): StatusTool[] {
  const health = new Map<string, { url: string; health: StatusTool['backends'][number]['health'] }>();
  for (const t of report?.tools ?? []) for (const b of t.backends) health.set(`${t.tool}/${b.id}`, { url: b.url, health: b.health });
  const listed = listing.map((t) => {
    const tool = emptyTool(t.tool);
    tool.backends = t.backends.map((b) => {
      const h = health.get(`${t.tool}/${b.id}`);
      const out: StatusTool['backends'][number] = {
        id: b.id,
        url: b.url,
        source: b.source === 'discovered' ? 'discovered' : 'registered',
        leaseSecondsLeft: b.leaseSecondsLeft,
        expiresAt: b.expiresAt,
        health: h && h.url === b.url ? h.health : 'unknown',
      };
      if (b.clientVersion !== undefined) out.clientVersion = b.clientVersion;
      if (b.held === true) out.held = true;
      return out;
    });
    tool.assignments = t.assignments.map((a) => ({ host: a.host, port: a.port }));
    tool.state = toolState(tool, false);
    return tool;
  });
  const fromReport = new Map((report?.tools ?? []).map((t) => [t.tool, t]));
  const tools = withLostTools(listed, (report?.tools ?? []).filter((t) => t.state === 'lost').map((t) => t.tool));
  for (const t of tools) {
    const r = fromReport.get(t.tool);
    t.url = r?.url ?? null;
    t.traffic = report?.traffic ? (r?.traffic ?? NO_TRAFFIC) : null;
  }
  return tools;
}

/**
 * The report `switchboard status` shows: tools from the authenticated API (GET /v1/tools), table version,
 * store state and health from GET /status.json. When the store is down the API answers 503; the status
 * report still has the last known data, and says so.
 */
export async function gatherStatus(client: RegistryClient, now = Date.now()): Promise<StatusReport> {
  const [listed, report] = await Promise.allSettled([client.listTools(), client.status()]);
  const meta = report.status === 'fulfilled' ? report.value : null;
  if (listed.status === 'rejected') {
    const err = listed.reason as unknown;
    const storeDown = err instanceof RegistryHttpError && err.status === 503 && err.code === 'store_unavailable';
    if (storeDown && meta) return meta;
    throw err;
  }
  const tools = toolsFromApi(listed.value.tools, meta);
  return {
    generatedAt: new Date(now).toISOString(),
    // The API just answered from the store, so it was reachable whatever an earlier report said.
    store: { kind: meta?.store.kind ?? null, state: 'reachable', dataFrom: 'store', dataAt: new Date(now).toISOString() },
    table: meta?.table ?? null,
    snapshot: meta?.snapshot ?? null,
    counts: countsOf(tools),
    states: stateCounts(tools),
    // Reports of a registry older than these figures have none: read as "no proxy counted here".
    traffic: meta?.traffic ?? null,
    history: meta?.history ?? { sampleSeconds: 0, samples: [] },
    ...(meta?.policies ? { policies: meta.policies } : {}),
    tools,
  };
}

/** Columns padded to their widest cell; the last one is not padded, so no line ends in spaces. */
export function alignColumns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

/** What a filter chose, for the summary: how many matched of how many, and how many of them are shown. */
function selectionText(r: StatusReport): string | null {
  const sel = r.selection;
  if (!sel) return null;
  const what = [sel.tool ? `tool ${sel.tool}` : '', sel.states.length ? `state ${sel.states.map(stateText).join(' or ')}` : ''].filter(Boolean).join(', ');
  const shown = r.tools.length < sel.matched ? `, showing ${r.tools.length} of them` : '';
  return `${sel.matched} of ${r.counts.tools} tools${what ? ` (${what})` : ''}, sorted by ${sel.sort}${shown}`;
}

export function renderStatusText(r: StatusReport): string {
  const pairs = summaryPairs(r);
  const matching = selectionText(r);
  if (matching) pairs.push(['Matching', matching]);
  const labelWidth = Math.max(...pairs.map(([k]) => k.length)) + 1;
  const summary = pairs.map(([k, v]) => `${`${k}:`.padEnd(labelWidth)} ${printable(v)}`);
  const rows: string[][] = [['TOOL', ...TOOL_COLUMNS, ...BACKEND_COLUMNS, 'ASSIGNMENT']];
  for (const t of r.tools) {
    // The tool name on every line, so `switchboard status | grep TOOL` shows all of a tool's backends.
    const own = toolCells(t);
    for (const cells of toolBackendRows(t)) rows.push([t.tool, ...own, ...cells, assignmentsText(t.assignments)].map(printable));
  }
  const table = r.tools.length ? alignColumns(rows) : [matching ? 'no tool matches the filter' : 'no tools'];
  return `${[...summary, '', ...policyLines(r), ...table].join('\n')}\n`;
}

/** The bans and tool policies in force, each list followed by an empty line; nothing when there are none. */
function policyLines(r: StatusReport): string[] {
  const p = r.policies;
  if (!p) return [];
  const { bans, tools } = policyRows(p);
  const out: string[] = [];
  if (p.bans.length) {
    out.push(...alignColumns(bans.map((row) => row.map(printable))));
    if (p.banCount > p.bans.length) out.push(`(${p.banCount - p.bans.length} more bans: switchboard block list)`);
    out.push('');
  }
  if (p.tools.length) out.push(...alignColumns(tools.map((row) => row.map(printable))), '');
  return out;
}

/** The command's filter flags as a query (null: none given), or a usage error (exit 2) naming the flag. */
function queryOfFlags(values: { tool?: string; state?: string[]; sort?: string; limit?: string }): StatusQuery | null {
  const raw: RawQuery = { tool: values.tool, state: values.state, sort: values.sort, limit: values.limit };
  if (!anyFilter(raw)) return null;
  try {
    return parseStatusQuery(raw);
  } catch (err) {
    if (!(err instanceof QueryError)) throw err;
    throw usageError(`--${err.field}: ${err.message}`);
  }
}

export async function statusCommand(args: string[], out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseFlags(
    {
      args,
      options: {
        registry: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean', default: false },
        tool: { type: 'string' },
        state: { type: 'string', multiple: true },
        sort: { type: 'string' },
        limit: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    },
    { registry: 'URL', token: 'ADMIN', 'token-file': 'PATH', tool: 'PATTERN', state: 'STATE', sort: 'KEY', limit: 'N' },
  );
  const query = queryOfFlags(values);
  const defaults = clientDefaults(env);
  const token = tokenFrom(values, defaults.token);
  if (!token) throw usageError('--token-file PATH (or SWITCHBOARD_TOKEN / SWITCHBOARD_ADMIN_TOKEN, or --token) is required: listing every tool takes the admin token');
  const registry = values.registry ?? defaults.registry;
  const client = new RegistryClient({ registry, token });
  let report: StatusReport;
  try {
    const all = await gatherStatus(client);
    report = query ? selectReport(all, query) : all;
  } catch (err) {
    const why =
      err instanceof RegistryHttpError
        ? `the registry answered ${err.status} ${err.code}: ${err.message}`
        : `cannot reach the registry at ${registry}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`;
    process.stderr.write(`switchboard status: ${printable(why)}\n`);
    return 1;
  }
  out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatusText(report));
  return 0;
}
