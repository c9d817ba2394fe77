import assert from 'node:assert/strict';
import { StatusHistory } from '../../src/control/status-history';
import { TrafficWindow, WINDOW_TICKS } from '../../src/control/traffic-window';
import { TrafficCounters } from '../../src/proxy/traffic-counters';

// The proxy's own counters (src/proxy/traffic-counters.ts) read by the control port's window, on a clock
// the test moves: rates are judged by the times given, never by how long the test took.

const T0 = 1_700_000_000_000;
const TICK = 10_000;

function answer(c: TrafficCounters, tool: string, statuses: number[]): void {
  for (const s of statuses) c.count(tool, s);
}

describe('per-tool traffic over the last minute (TrafficWindow over TrafficCounters)', () => {
  it('counts requests and 5xx per tool and in all; a request naming no tool counts in all only', () => {
    const c = new TrafficCounters();
    const w = new TrafficWindow(c, T0);
    answer(c, 'web', [200, 200, 502, 404, 503, 499]);
    answer(c, '', [404, 404]);
    const per = w.perTool(T0 + 20_000);
    assert.deepEqual([...per.keys()], ['web']);
    assert.deepEqual(per.get('web'), { requests: 6, serverErrors: 2, requestsPerSecond: 6 / 20, serverErrorRatio: 2 / 6 });
    assert.deepEqual(w.total(T0 + 20_000), { requests: 8, serverErrors: 2, requestsPerSecond: 8 / 20, serverErrorRatio: 2 / 8 });
  });

  it('slides: after a full window of ticks, only the last minute counts', () => {
    const c = new TrafficCounters();
    const w = new TrafficWindow(c, T0);
    answer(c, 'web', new Array(100).fill(500));
    for (let i = 1; i <= WINDOW_TICKS; i++) {
      w.read(T0 + i * TICK);
      answer(c, 'web', new Array(10).fill(200));
    }
    // The oldest slot is the start: all of it is in the window.
    assert.equal(w.perTool(T0 + WINDOW_TICKS * TICK).get('web')!.requests, 100 + 10 * WINDOW_TICKS);
    w.read(T0 + (WINDOW_TICKS + 1) * TICK);
    const now = T0 + (WINDOW_TICKS + 1) * TICK;
    const web = w.perTool(now).get('web')!;
    // The 100 errors came before the oldest slot now kept: the window holds the 60 successes since.
    assert.equal(web.requests, 10 * WINDOW_TICKS);
    assert.equal(web.serverErrors, 0);
    assert.equal(web.serverErrorRatio, 0);
    assert.equal(w.seconds(now), WINDOW_TICKS * TICK / 1000);
    assert.equal(web.requestsPerSecond, (10 * WINDOW_TICKS) / (WINDOW_TICKS * TICK / 1000));
  });

  it('forgets a tool idle for a whole window, here and in the proxy, and counts it again from zero', () => {
    const c = new TrafficCounters();
    const w = new TrafficWindow(c, T0);
    answer(c, 'web', [200, 200, 200]);
    answer(c, 'api', [200]);
    let t = T0;
    for (let i = 0; i <= WINDOW_TICKS; i++) {
      t += TICK;
      w.read(t);
      answer(c, 'api', [200]);
    }
    const kept: string[] = [];
    c.forEachTool((tool) => kept.push(tool));
    assert.deepEqual(kept, ['api'], 'web had no request for a whole window');
    assert.equal(w.perTool(t).get('web'), undefined);
    answer(c, 'web', [500]);
    assert.deepEqual(w.perTool(t + 1000).get('web'), { requests: 1, serverErrors: 1, requestsPerSecond: 1 / 61, serverErrorRatio: 1 });
    assert.equal(c.requests, 3 + 1 + (WINDOW_TICKS + 1) + 1, 'the totals keep everything');
  });

  it('no request in the window: 0 per second and no ratio', () => {
    const c = new TrafficCounters();
    const w = new TrafficWindow(c, T0);
    assert.deepEqual(w.total(T0 + TICK), { requests: 0, serverErrors: 0, requestsPerSecond: 0, serverErrorRatio: null });
  });
});

describe('the last hour (StatusHistory)', () => {
  it('keeps 120 samples of routes, lost tools and the request rate since the sample before', () => {
    const c = new TrafficCounters();
    let routes = 10;
    const lost: string[] = [];
    const h = new StatusHistory({ current: () => ({ routeCount: routes }), lostTools: () => lost }, c, 30_000, T0);
    for (let i = 1; i <= 130; i++) {
      answer(c, 'web', i === 130 ? [500, 200, 200] : new Array(30).fill(200));
      routes = 10 + i;
      if (i === 130) lost.push('gone');
      h.sample(T0 + i * 30_000);
    }
    const samples = h.samples();
    assert.equal(samples.length, 120);
    assert.equal(samples[0].at, new Date(T0 + 11 * 30_000).toISOString());
    assert.deepEqual(samples[118], { at: new Date(T0 + 129 * 30_000).toISOString(), routes: 139, lostTools: 0, requestsPerSecond: 1, serverErrorRatio: 0 });
    assert.deepEqual(samples[119], { at: new Date(T0 + 130 * 30_000).toISOString(), routes: 140, lostTools: 1, requestsPerSecond: 0.1, serverErrorRatio: 1 / 3 });
  });

  it('in a process without a proxy or a table: no figures, not zeros', () => {
    const h = new StatusHistory(null, null, 30_000, T0);
    h.sample(T0 + 30_000);
    assert.deepEqual(h.samples(), [{ at: new Date(T0 + 30_000).toISOString(), routes: null, lostTools: null, requestsPerSecond: null, serverErrorRatio: null }]);
  });
});
