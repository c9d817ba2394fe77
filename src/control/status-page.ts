import { TOOL_STATES, type ToolState } from '../client/status-report';
import { escapeHtml } from './html';
import { renderCharts } from './status-charts';
import type { StatusReport, StatusTool } from './status-data';
import { SORT_KEYS, queryParams, type SortKey, type StatusQuery } from './status-filter';
import { policyRows } from './status-policies';
import { STATUS_SCRIPT, STATUS_SCRIPT_SOURCE } from './status-script';
import { BACKEND_COLUMNS, assignmentsText, summaryPairs, toolBackendRows, toolCells } from './status-table';
import { stateText } from './tool-state';

export { escapeHtml } from './html';

export const REFRESH_SECONDS = 5;

/** Tools on one page unless `limit` says otherwise: enough to scan, few enough to render at once. */
export const PAGE_TOOLS = 200;

/** The page's defaults: most pressing state first, one page of tools. */
export const PAGE_QUERY: Readonly<StatusQuery> = Object.freeze({ tool: '', states: [], sort: 'state', limit: PAGE_TOOLS, offset: 0 });

/** The page's Content-Security-Policy: its own script (by hash) and inline styles; no other origin, no frame. */
export const STATUS_PAGE_CSP = `default-src 'none'; script-src ${STATUS_SCRIPT_SOURCE}; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .6em}
form.filter{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center;margin:0 0 1em}
form.filter input[type=search]{width:18em}
.charts{display:flex;flex-wrap:wrap;gap:.5em 1.5em;margin:0 0 1em}
.chart{margin:0}.chart figcaption{font-size:.9em}.chart small{display:block;color:#666;font-size:.75em}
.chart svg{display:block;background:#fafafa;border:1px solid #ddd}
.chart polyline{fill:none;stroke:#2360a5;stroke-width:1.5}.chart line{stroke:#ccc;stroke-width:1}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0 0 1em}
dt{font-weight:600}dd{margin:0}
.bad{color:#a00;font-weight:600}
.states a{margin-right:.6em;padding:.1em .4em;border-radius:3px}.states a[aria-current]{font-weight:700;text-decoration:none}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
thead th{background:#f0f0f0}thead a{color:inherit}
tbody th{font-weight:600}
td.down{color:#a00}
td.num{text-align:right}
table.policies{margin:0 0 1em}table.policies caption{text-align:left;font-weight:600;padding:.2em 0}
tbody.s-lost>tr>*,.states a.s-lost{background:#f9d6d5}
tbody.s-held>tr>*,.states a.s-held{background:#fdefc3}
tbody.s-not_running>tr>*,.states a.s-not_running{background:#fbe9e7;color:#a00}
tbody.s-discovered>tr>*,.states a.s-discovered{background:#dfeafb}
`;

/** A link to the page with `q` changed as `change` says, the rest of the query (and the refresh) kept. */
function hrefOf(q: StatusQuery, change: Partial<StatusQuery>, refresh: number): string {
  const p = queryParams({ ...q, offset: 0, ...change }, PAGE_QUERY);
  if (refresh !== REFRESH_SECONDS) p.set('refresh', String(refresh));
  const s = p.toString();
  return escapeHtml(s ? `./?${s}` : './');
}

const SORT_NAMES: Record<SortKey, string> = { name: 'name', state: 'state (most pressing first)', rps: 'requests per second', errors: '5xx ratio' };

function filterForm(q: StatusQuery, refresh: number): string {
  const states = ['<option value="">any</option>', ...TOOL_STATES.map((s) => `<option value="${s}"${q.states.length === 1 && q.states[0] === s ? ' selected' : ''}>${stateText(s)}</option>`)];
  const sorts = SORT_KEYS.map((k) => `<option value="${k}"${q.sort === k ? ' selected' : ''}>${SORT_NAMES[k]}</option>`);
  const hidden = [refresh !== REFRESH_SECONDS ? `<input type="hidden" name="refresh" value="${refresh}">` : '', q.limit !== PAGE_TOOLS && q.limit !== null ? `<input type="hidden" name="limit" value="${q.limit}">` : ''];
  return `<form class="filter" method="get" action="./" role="search">
<label>Tool <input type="search" name="tool" value="${escapeHtml(q.tool)}" placeholder="part of a name, or a glob: web-*" autocomplete="off" spellcheck="false" maxlength="256"></label>
<label>State <select name="state">${states.join('')}</select></label>
<label>Sort by <select name="sort">${sorts.join('')}</select></label>
${hidden.join('')}<button type="submit">Filter</button>
</form>`;
}

/** Every state with its count, each a link to the tools in it; the one filtered on is marked. */
function stateLinks(r: StatusReport, q: StatusQuery, refresh: number): string {
  const all = `<a href="${hrefOf(q, { states: [] }, refresh)}"${q.states.length === 0 ? ' aria-current="true"' : ''}>all ${r.counts.tools.toLocaleString('en-US')}</a>`;
  const each = TOOL_STATES.map((s: ToolState) => {
    const current = q.states.length === 1 && q.states[0] === s ? ' aria-current="true"' : '';
    return `<a class="s-${s}" href="${hrefOf(q, { states: [s] }, refresh)}"${current}>${stateText(s)} ${r.states[s].toLocaleString('en-US')}</a>`;
  });
  return `<nav class="states" aria-label="Tools by state">${[all, ...each].join(' ')}</nav>`;
}

/** Which tools are shown of how many, with the neighbouring pages. */
function shownLine(matched: number, shown: number, q: StatusQuery, refresh: number): string {
  const from = matched === 0 ? 0 : q.offset + 1;
  const parts = [`Showing ${from.toLocaleString('en-US')}–${(q.offset + shown).toLocaleString('en-US')} of ${matched.toLocaleString('en-US')} matching tools`];
  if (q.limit !== null && q.offset > 0) parts.push(`<a rel="prev" href="${hrefOf(q, { offset: Math.max(0, q.offset - q.limit) }, refresh)}">previous ${q.limit}</a>`);
  if (q.limit !== null && q.offset + shown < matched) parts.push(`<a rel="next" href="${hrefOf(q, { offset: q.offset + q.limit }, refresh)}">next ${q.limit}</a>`);
  return `<p class="shown">${parts.join(' · ')}</p>`;
}

function toolRows(t: StatusTool): string {
  const rows = toolBackendRows(t);
  const span = rows.length > 1 ? ` rowspan="${rows.length}"` : '';
  const name = t.url ? `<a href="${escapeHtml(t.url)}" rel="noreferrer">${escapeHtml(t.tool)}</a>` : escapeHtml(t.tool);
  const own = toolCells(t)
    .map((c, j) => `<td${span}${j > 0 ? ' class="num"' : ''}>${escapeHtml(c)}</td>`)
    .join('');
  return rows
    .map((cells, i) => {
      const lead = i === 0 ? `<th scope="rowgroup"${span}>${name}</th>${own}` : '';
      const tail = i === 0 ? `<td${span}>${escapeHtml(assignmentsText(t.assignments))}</td>` : '';
      const tds = cells
        .map((c, j) => {
          const klass = j === 3 ? ' class="num"' : j === 4 && c === 'down' ? ' class="down"' : '';
          return `<td${klass}>${escapeHtml(c)}</td>`;
        })
        .join('');
      return `<tr>${lead}${tds}${tail}</tr>`;
    })
    .join('\n');
}

/** The column heads; those the tools can be sorted by link to that order. */
function tableHead(q: StatusQuery, refresh: number): string {
  const sortable: Record<string, SortKey> = { TOOL: 'name', STATE: 'state', 'REQ/S': 'rps', '5XX': 'errors' };
  return ['TOOL', 'STATE', 'REQ/S', '5XX', ...BACKEND_COLUMNS, 'ASSIGNMENT']
    .map((c) => {
      const label = escapeHtml(c.toLowerCase());
      const key = sortable[c];
      if (!key) return `<th scope="col">${label}</th>`;
      const sorted = q.sort === key ? ` aria-sort="${key === 'name' ? 'ascending' : 'descending'}"` : '';
      return `<th scope="col"${sorted}><a href="${hrefOf(q, { sort: key }, refresh)}">${label}</a></th>`;
    })
    .join('');
}

export interface PageSelection {
  query: StatusQuery;
  /** Tools that passed the filter; `tools` is the page of them shown. */
  matched: number;
  tools: StatusTool[];
}

/** A table of cells, its first row the head. */
function plainTable(caption: string, rows: string[][]): string {
  const [head, ...body] = rows;
  const ths = head.map((c) => `<th scope="col">${escapeHtml(c.toLowerCase())}</th>`).join('');
  const trs = body.map((row) => `<tr>${row.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table class="policies">\n<caption>${escapeHtml(caption)}</caption>\n<thead><tr>${ths}</tr></thead>\n<tbody>\n${trs}\n</tbody>\n</table>`;
}

/** The bans and tool policies in force, when there are any (the summary counts them either way). */
function policiesPart(r: StatusReport): string {
  const p = r.policies;
  if (!p || (p.bans.length === 0 && p.tools.length === 0)) return '';
  const { bans, tools } = policyRows(p);
  const more = p.banCount > p.bans.length ? ` (the first ${p.bans.length} of ${p.banCount})` : '';
  return `<section class="policies" aria-label="Bans and tool policies">
${p.bans.length ? plainTable(`Bans in force${more}`, bans) : ''}
${p.tools.length ? plainTable('Tool policies', tools) : ''}
</section>`;
}

function mainPart(r: StatusReport, sel: PageSelection, refresh: number): string {
  const q = sel.query;
  const summary = summaryPairs(r)
    .map(([k, v]) => {
      const bad = (k === 'Store' && r.store.state !== 'reachable') || (k === 'Requests' && r.traffic === null) || (k === 'Policies' && r.policies?.maintenance != null);
      return `<dt>${escapeHtml(k)}</dt><dd${bad ? ' class="bad"' : ''}>${escapeHtml(v)}</dd>`;
    })
    .join('\n');
  const columns = BACKEND_COLUMNS.length + 5;
  const body = sel.tools.length
    ? sel.tools.map((t) => `<tbody class="s-${t.state}">\n${toolRows(t)}\n</tbody>`).join('\n')
    : `<tbody><tr><td colspan="${columns}">${r.tools.length ? 'no tool matches the filter' : 'no tools'}</td></tr></tbody>`;
  return `<main>
${renderCharts(r)}
<dl>
${summary}
</dl>
${policiesPart(r)}
${stateLinks(r, q, refresh)}
${shownLine(sel.matched, sel.tools.length, q, refresh)}
<table>
<caption hidden>Tools, their state, traffic, backends and port assignments</caption>
<thead><tr>${tableHead(q, refresh)}</tr></thead>
${body}
</table>
</main>`;
}

/**
 * The status page, server-rendered from a StatusReport (which holds no token or secret) and the page of
 * tools a filter chose. It works without JavaScript (the filter form submits, a meta refresh reloads);
 * with it, STATUS_SCRIPT filters as the operator types and refreshes in place.
 */
export function renderStatusPage(r: StatusReport, sel: PageSelection, refreshSeconds = REFRESH_SECONDS): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<noscript><meta http-equiv="refresh" content="${refreshSeconds}"></noscript>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Switchboard status</title>
<style>${STYLE}</style>
</head>
<body data-refresh="${refreshSeconds}">
<h1>Switchboard status</h1>
${filterForm(sel.query, refreshSeconds)}
${mainPart(r, sel, refreshSeconds)}
<p><small>State: lost (the store lost it; nobody removed it), held (a backend's heartbeats stopped; self-preservation keeps it), not running (no live backend), discovered (found by fallback discovery: not registering), live. Requests per second and 5xx ratio are this process's proxy's, over the last minute; the charts show the last hour. Health is this proxy's passive health (failures it saw in its own traffic); "unknown" where this process runs no proxy. The tool name links to the tool through this proxy. This page refreshes every ${refreshSeconds} s. Also as JSON: <a href="status.json">status.json</a>.</small></p>
<script>${STATUS_SCRIPT}</script>
</body>
</html>
`;
}
