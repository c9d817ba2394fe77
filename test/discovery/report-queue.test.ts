import assert from 'node:assert/strict';
import { ReportQueue } from '../../src/discovery/report-queue';
import type { Assignment } from '../../src/registry/types';

const at = (port: number): Assignment => ({ tool: `t${port}`, host: '127.0.0.1', port, createdAt: 0 });

/** A reporter whose reports stay in flight until the test lets them go. */
function heldReporter() {
  const calls: Assignment[] = [];
  const release: Array<(fail?: Error) => void> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    calls,
    release,
    get maxInFlight() {
      return maxInFlight;
    },
    report(a: Assignment): Promise<void> {
      calls.push(a);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise<void>((resolve, reject) => {
        release.push((fail) => {
          inFlight--;
          if (fail) reject(fail);
          else resolve();
        });
      });
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('discovery report queue', () => {
  it('reports a burst a few at a time, every discovery once, and moves on past failures', async () => {
    const reporter = heldReporter();
    const failed: number[] = [];
    const queue = new ReportQueue(reporter, (a) => failed.push(a.port), 4);
    for (let p = 1; p <= 20; p++) queue.add(at(p));
    // Reported again while still queued: sent once.
    queue.add(at(20));
    assert.equal(reporter.calls.length, 4);
    assert.equal(queue.pending, 20);
    let round = 0;
    while (reporter.release.length > 0) {
      const batch = reporter.release.splice(0);
      batch.forEach((go, i) => go(round === 0 && i === 0 ? new Error('registry down') : undefined));
      round++;
      await settle();
    }
    assert.deepEqual(reporter.calls.map((a) => a.port), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(reporter.maxInFlight, 4);
    assert.deepEqual(failed, [1]);
    assert.equal(queue.pending, 0);
  });

  it('reports a discovery again while its earlier report is still in flight (a later probe saw it answer again)', async () => {
    const reporter = heldReporter();
    const queue = new ReportQueue(reporter, () => undefined, 2);
    queue.add(at(1));
    queue.add(at(1)); // in flight already: a later probe saw it answer again, which the first report predates
    assert.deepEqual(reporter.calls.map((a) => a.port), [1, 1]);
    assert.equal(reporter.maxInFlight, 2, 'the second report did not wait for the first');
    assert.equal(queue.pending, 2);
    reporter.release.splice(0).forEach((go) => go());
    await settle();
    assert.equal(queue.pending, 0);
    assert.equal(reporter.calls.length, 2, 'reported twice, no more');
  });
});
