import { RegistryClient, RegistryHttpError, type ToolListing } from '../client/registry-client';
import { countsOf, type StatusReport, type StatusTool } from '../control/status-data';
import { BACKEND_COLUMNS, assignmentsText, summaryPairs, toolBackendRows } from '../control/status-table';
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

/** Tools as the API lists them, with the passive health the status report knows for the same backend. */
function toolsFromApi(listing: ToolListing[], report: StatusReport | null): StatusTool[] {
  const health = new Map<string, { url: string; health: StatusTool['backends'][number]['health'] }>();
  for (const t of report?.tools ?? []) for (const b of t.backends) health.set(`${t.tool}/${b.id}`, { url: b.url, health: b.health });
  return listing.map((t) => ({
    tool: t.tool,
    backends: t.backends.map((b) => {
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
      return out;
    }),
    assignments: t.assignments.map((a) => ({ host: a.host, port: a.port })),
  }));
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
    tools,
  };
}

/** Columns padded to their widest cell; the last one is not padded, so no line ends in spaces. */
export function alignColumns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

export function renderStatusText(r: StatusReport): string {
  const pairs = summaryPairs(r);
  const labelWidth = Math.max(...pairs.map(([k]) => k.length)) + 1;
  const summary = pairs.map(([k, v]) => `${`${k}:`.padEnd(labelWidth)} ${printable(v)}`);
  const rows: string[][] = [['TOOL', ...BACKEND_COLUMNS, 'ASSIGNMENT']];
  for (const t of r.tools) {
    // The tool name on every line, so `switchboard status | grep TOOL` shows all of a tool's backends.
    for (const cells of toolBackendRows(t)) rows.push([t.tool, ...cells, assignmentsText(t.assignments)].map(printable));
  }
  const table = r.tools.length ? alignColumns(rows) : ['no tools'];
  return `${[...summary, '', ...table].join('\n')}\n`;
}

export async function statusCommand(args: string[], out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseFlags(
    {
      args,
      options: { registry: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' }, json: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    },
    { registry: 'URL', token: 'ADMIN', 'token-file': 'PATH' },
  );
  const defaults = clientDefaults(env);
  const token = tokenFrom(values, defaults.token);
  if (!token) throw usageError('--token-file PATH (or SWITCHBOARD_TOKEN / SWITCHBOARD_ADMIN_TOKEN, or --token) is required: listing every tool takes the admin token');
  const registry = values.registry ?? defaults.registry;
  const client = new RegistryClient({ registry, token });
  let report: StatusReport;
  try {
    report = await gatherStatus(client);
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
