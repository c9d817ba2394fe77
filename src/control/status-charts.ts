import type { StatusReport, StatusSample } from '../client/status-report';
import { escapeHtml } from './html';
import { rateText, ratioText } from './status-table';

/** The charts' width and height in SVG units (the page scales them). */
const W = 240;
const H = 48;
const HOUR_MS = 3_600_000;

interface Series {
  title: string;
  value: (s: StatusSample) => number | null;
  text: (n: number) => string;
  /** The smallest top of the scale, so a flat line near zero is not drawn as a cliff. */
  floor: number;
  /** What a series with no value at all means in this process. */
  none: string;
}

const count = (n: number): string => n.toLocaleString('en-US');

const SERIES: Series[] = [
  { title: 'Live routes', value: (s) => s.routes, text: count, floor: 1, none: 'no route table in this process' },
  { title: 'Lost tools', value: (s) => s.lostTools, text: count, floor: 1, none: 'no route table in this process' },
  { title: 'Requests per second', value: (s) => s.requestsPerSecond, text: rateText, floor: 1, none: 'no proxy in this process' },
  { title: '5xx ratio', value: (s) => s.serverErrorRatio, text: ratioText, floor: 0.01, none: 'no proxy in this process' },
];

/** The polylines of a series: a gap (no value: no traffic yet, no table yet) breaks the line. */
function lines(points: Array<{ x: number; v: number | null }>, top: number): string[] {
  const out: string[] = [];
  let run: Array<[number, number]> = [];
  const flush = () => {
    // A run of one point is drawn as a short dash, so a lone value still shows.
    if (run.length === 1) run.push([Math.min(W, run[0][0] + 3), run[0][1]]);
    if (run.length) out.push(`<polyline points="${run.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
    run = [];
  };
  for (const p of points) {
    if (p.v === null) flush();
    else run.push([p.x, H - 2 - (p.v / top) * (H - 4)]);
  }
  flush();
  return out;
}

function chart(series: Series, samples: StatusSample[], now: number, spanMs: number): string {
  const points = samples.map((s) => ({ x: Math.max(0, W - ((now - Date.parse(s.at)) / spanMs) * W), v: series.value(s) }));
  const values = points.map((p) => p.v).filter((v): v is number => v !== null);
  const last = points.length ? points[points.length - 1].v : null;
  const top = Math.max(series.floor, ...values);
  const caption = `${escapeHtml(series.title)} <b>${escapeHtml(last === null ? '-' : series.text(last))}</b>`;
  const scale = values.length ? `top of scale ${series.text(top)}, ${spanText(spanMs)}` : series.none;
  return `<figure class="chart"><figcaption>${caption}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(`${series.title}, ${spanText(spanMs)}`)}"><line x1="0" y1="${H - 2}" x2="${W}" y2="${H - 2}"/>${lines(points, top).join('')}</svg><small>${escapeHtml(scale)}</small></figure>`;
}

function spanText(spanMs: number): string {
  return spanMs >= HOUR_MS ? 'last hour' : `last ${Math.max(1, Math.round(spanMs / 60_000))} min`;
}

/**
 * The last hour of the report's history as small inline SVG line charts (no script, no library, nothing
 * fetched): the newest point is the report's own moment, at the right edge. A process younger than an
 * hour has less: its charts span what it has (at least a minute), so its first minutes are not a dot.
 */
export function renderCharts(r: StatusReport): string {
  const now = Date.parse(r.generatedAt);
  const samples = r.history.samples.filter((s) => now - Date.parse(s.at) <= HOUR_MS);
  const first = samples.length ? Date.parse(samples[0].at) : now;
  const spanMs = Math.min(HOUR_MS, Math.max(60_000, now - first));
  return `<section class="charts" aria-label="${escapeHtml(spanText(spanMs))}">${SERIES.map((s) => chart(s, samples, now, spanMs)).join('')}</section>`;
}
