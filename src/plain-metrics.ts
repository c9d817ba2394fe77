import type client from 'prom-client';

// The proxy counts every request. prom-client, on each inc() or observe(), checks the label values,
// hashes them into a key and looks the series up; a proxy answering tens of thousands of requests a
// second paid that on each one. Here the hot path adds to plain numbers in a series it holds, and the
// numbers are read (or folded into prom-client) only when /metrics is scraped.

/** One label set of a counter: the hot path adds to `n`. */
export interface CountCell {
  n: number;
}

/**
 * A prom-client counter whose increments are kept as plain numbers until a scrape: give `fold` as the
 * counter's `collect`, and every count made since the last scrape is added to it then.
 */
export class FoldedCounter<L extends string> {
  private readonly cells = new Map<string, { labels: Partial<Record<L, string>>; cell: CountCell }>();
  counter: client.Counter<L> | null = null;

  /** The cell of one label set, made once and kept by the caller. */
  cell(labels: Partial<Record<L, string>>): CountCell {
    const key = JSON.stringify(labels);
    let entry = this.cells.get(key);
    if (!entry) this.cells.set(key, (entry = { labels, cell: { n: 0 } }));
    return entry.cell;
  }

  readonly fold = (): void => {
    const counter = this.counter;
    if (!counter) return;
    for (const { labels, cell } of this.cells.values()) {
      if (cell.n === 0) continue;
      counter.inc(labels, cell.n);
      cell.n = 0;
    }
  };
}

/** One label set of a histogram: a count per bucket (the last one is +Inf), their sum. */
export interface HistogramCell {
  readonly counts: Float64Array;
  sum: number;
}

type Sample = { labels: Record<string, string | number>; sharedLabels?: Record<string, string>; value: number; metricName: string };
type Exported = { name: string; help: string; type: string; aggregator: string; values: Sample[] };

/**
 * A histogram in prom-client's exported shape (what its Registry and, for `--workers`, its
 * AggregatorRegistry read through `get()`), observed into plain arrays. Buckets are cumulative only
 * when exported, as Prometheus wants them.
 */
export class PlainHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: HistogramCell }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {}

  /** The cell of one label set (values in labelNames' order), made once and kept by the caller. */
  cell(...values: string[]): HistogramCell {
    const key = values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      entry = { labels, cell: { counts: new Float64Array(this.bounds.length + 1), sum: 0 } };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  observe(cell: HistogramCell, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    cell.counts[i]++;
    cell.sum += value;
  }

  reset(): void {
    this.cells.clear();
  }

  /** For /metrics: the label set as shared labels, `le` after it (prom-client's Histogram writes the same text). */
  getForPromString(): Exported {
    const values: Sample[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let acc = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        acc += cell.counts[i];
        values.push({ labels: { le: i < this.bounds.length ? this.bounds[i] : '+Inf' }, sharedLabels: labels, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: {}, sharedLabels: labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: acc, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** For JSON (what `--workers` hands the primary to add up): each sample's labels in one object. */
  get(): Exported {
    const out = this.getForPromString();
    out.values = out.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return out;
  }
}
