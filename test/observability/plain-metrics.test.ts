import assert from 'node:assert/strict';
import client from 'prom-client';
import { FoldedCounter, PlainHistogram } from '../../src/plain-metrics';

const BOUNDS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0.0005, 0.001, 0.002, 0.05, 0.05, 0.7, 3, 42];

/** The exposition text of one registry, its HELP/TYPE lines and samples. */
async function exposition(register: (r: client.Registry) => void): Promise<string> {
  const registry = new client.Registry();
  register(registry);
  return registry.metrics();
}

describe('plain counts folded into prom-client at scrape time', () => {
  it('a PlainHistogram exports what prom-client\'s Histogram exports for the same observations, by label set', async () => {
    const theirs = await exposition((r) => {
      const h = new client.Histogram({ name: 'x_seconds', help: 'h', labelNames: ['tool'], buckets: BOUNDS, registers: [r] });
      for (const [i, v] of SAMPLES.entries()) h.observe({ tool: i % 2 ? 'a' : 'b' }, v);
    });
    const ours = await exposition((r) => {
      const h = new PlainHistogram('x_seconds', 'h', ['tool'], BOUNDS);
      const cells = { a: h.cell('a'), b: h.cell('b') };
      for (const [i, v] of SAMPLES.entries()) h.observe(i % 2 ? cells.a : cells.b, v);
      r.registerMetric(h as unknown as client.Metric);
    });
    const sorted = (text: string) => text.trim().split('\n').sort().join('\n');
    assert.equal(sorted(ours), sorted(theirs));
    assert.match(ours, /x_seconds_bucket\{le="\+Inf",tool="b"\} 4/);
  });

  it('a FoldedCounter adds its plain counts to the counter when it is read, once each', async () => {
    const folded = new FoldedCounter<'code'>();
    const counter = new client.Counter({ name: 'y_total', help: 'c', labelNames: ['code'], registers: [], collect: folded.fold });
    folded.counter = counter;
    const ok = folded.cell({ code: '200' });
    assert.equal(folded.cell({ code: '200' }), ok, 'one cell a label set');
    ok.n += 5;
    folded.cell({ code: '502' }).n++;
    const value = async (code: string) => (await counter.get()).values.find((v) => v.labels.code === code)?.value;
    assert.equal(await value('200'), 5);
    assert.equal(await value('502'), 1);
    ok.n += 2;
    assert.equal(await value('200'), 7, 'a second read adds only what was counted since');
  });
});
