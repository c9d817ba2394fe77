import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Deadlines, type Timed } from '../../src/proxy/deadlines';
import { sleep, waitFor } from '../support/wait';

function timed(dueInMs: number): Timed & { fired: number } {
  return {
    due: performance.now() + dueInMs,
    fired: 0,
    expired() {
      this.fired++;
    },
  };
}

describe('Deadlines (one sweep for every exchange in flight)', () => {
  it('expires what is past due, once, and leaves alone what was pushed back', async () => {
    const d = new Deadlines(5);
    const soon = timed(0);
    const later = timed(60_000);
    d.add(soon);
    d.add(later);
    d.add(soon);
    await waitFor('the due exchange expired', () => soon.fired === 1 || undefined);
    await sleep(30);
    assert.equal(soon.fired, 1, 'expired once, and no longer timed');
    assert.equal(later.fired, 0);
    assert.equal(d.size, 1);
    d.delete(later);
    assert.equal(d.size, 0);
  });

  it('a deadline pushed back before its sweep is not expired', async () => {
    const d = new Deadlines(5);
    const t = timed(20);
    d.add(t);
    t.due = performance.now() + 60_000;
    await sleep(80);
    assert.equal(t.fired, 0, 'sweeps passed its first deadline and saw the pushed one');
    t.due = performance.now();
    await waitFor('expired once due again', () => t.fired === 1 || undefined);
  });

  it('sweeps at a tenth of the shortest timeout, within 5..100 ms', () => {
    assert.equal(Deadlines.tickFor(5000, 60_000), 100);
    assert.equal(Deadlines.tickFor(300, 60_000), 30);
    assert.equal(Deadlines.tickFor(1, 60_000), 5);
  });
});
