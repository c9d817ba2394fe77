import type { StatusReport, StatusTool } from './status-data';
import { BACKEND_COLUMNS, assignmentsText, summaryPairs, toolBackendRows } from './status-table';

export const REFRESH_SECONDS = 5;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Every value on the page goes through this: URLs and client versions are whatever a client sent. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .6em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0 0 1.2em}
dt{font-weight:600}dd{margin:0}
.bad{color:#a00;font-weight:600}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
thead th{background:#f0f0f0}
tbody th{font-weight:600}
td.down,tr.nobackend td{color:#a00}
td.num{text-align:right}
`;

function toolRows(t: StatusTool): string {
  const rows = toolBackendRows(t);
  const span = rows.length > 1 ? ` rowspan="${rows.length}"` : '';
  const cls = t.backends.length ? '' : ' class="nobackend"';
  return rows
    .map((cells, i) => {
      const lead = i === 0 ? `<th scope="rowgroup"${span}>${escapeHtml(t.tool)}</th>` : '';
      const tail = i === 0 ? `<td${span}>${escapeHtml(assignmentsText(t.assignments))}</td>` : '';
      const tds = cells
        .map((c, j) => {
          const klass = j === 3 ? ' class="num"' : j === 4 && c === 'down' ? ' class="down"' : '';
          return `<td${klass}>${escapeHtml(c)}</td>`;
        })
        .join('');
      return `<tr${cls}>${lead}${tds}${tail}</tr>`;
    })
    .join('\n');
}

/**
 * The status page: server-rendered, no script, refreshing itself. Built from a StatusReport only, which
 * holds no token or secret, so nothing of the kind can end up on the page.
 */
export function renderStatusPage(r: StatusReport, refreshSeconds = REFRESH_SECONDS): string {
  const summary = summaryPairs(r)
    .map(([k, v]) => {
      const bad = k === 'Store' && r.store.state !== 'reachable';
      return `<dt>${escapeHtml(k)}</dt><dd${bad ? ' class="bad"' : ''}>${escapeHtml(v)}</dd>`;
    })
    .join('\n');
  const head = ['TOOL', ...BACKEND_COLUMNS, 'ASSIGNMENT'].map((c) => `<th scope="col">${escapeHtml(c.toLowerCase())}</th>`).join('');
  const body = r.tools.length
    ? r.tools.map((t) => `<tbody>\n${toolRows(t)}\n</tbody>`).join('\n')
    : `<tbody><tr><td colspan="${BACKEND_COLUMNS.length + 2}">no tools</td></tr></tbody>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${refreshSeconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard status</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Switchboard status</h1>
<dl>
${summary}
</dl>
<table>
<caption hidden>Tools, their backends and port assignments</caption>
<thead><tr>${head}</tr></thead>
${body}
</table>
<p><small>Health is this proxy's passive health (failures it saw in its own traffic); "unknown" where this process runs no proxy. This page refreshes every ${refreshSeconds} s. Also as JSON: <a href="status.json">status.json</a>.</small></p>
</body>
</html>
`;
}
