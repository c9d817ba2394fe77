import assert from 'node:assert/strict';
import { Balancer, mayRetry } from '../../src/proxy/balancer';
import { PassiveHealth } from '../../src/proxy/health';
import type { Route } from '../../src/table/route';
import { createRouteBackend, type RouteBackend } from '../../src/table/route-backend';

function rb(id: string, port: number): RouteBackend {
  return createRouteBackend({ id, url: `http://127.0.0.1:${port}`, source: 'registered' })!;
}

function route(...backends: RouteBackend[]): Route {
  return { tool: 't', backends, assignments: [] };
}

describe('passive health', () => {
  it('marks a backend down for a cool-off that doubles while it keeps failing, up to a cap', () => {
    const h = new PassiveHealth({ baseCooloffMs: 100, maxCooloffMs: 350 });
    const b = rb('b1', 1);
    assert.equal(h.isDown('t', b, 0), false);
    assert.equal(h.markFailure('t', b, 0), 100);
    assert.equal(h.isDown('t', b, 50), true);
    assert.equal(h.isDown('t', b, 100), false, 'tried again once the cool-off ends');
    assert.equal(h.markFailure('t', b, 100), 200);
    assert.equal(h.markFailure('t', b, 300), 350);
    assert.equal(h.markFailure('t', b, 650), 350);
    assert.equal(h.isDown('t', b, 900), true);
  });

  it('forgets the failure on success', () => {
    const h = new PassiveHealth({ baseCooloffMs: 100, maxCooloffMs: 1000 });
    const b = rb('b1', 1);
    h.markFailure('t', b, 0);
    h.markFailure('t', b, 100);
    h.markSuccess('t', b);
    assert.equal(h.isDown('t', b, 101), false);
    assert.equal(h.markFailure('t', b, 200), 100, 'the next failure starts from the base again');
  });

  it('is keyed by tool/id, and a new url under the same id starts clean', () => {
    const h = new PassiveHealth({ baseCooloffMs: 100 });
    h.markFailure('t', rb('b1', 1), 0);
    assert.equal(h.isDown('t', rb('b1', 1), 1), true, 'same id and url: a new object in a new table is still down');
    assert.equal(h.isDown('t', rb('b2', 1), 1), false);
    assert.equal(h.isDown('u', rb('b1', 1), 1), false);
    assert.equal(h.isDown('t', rb('b1', 2), 1), false);
  });
});

describe('balancer', () => {
  it('round-robins over the backends', () => {
    const bal = new Balancer(new PassiveHealth());
    const r = route(rb('a', 1), rb('b', 2), rb('c', 3));
    const ids = Array.from({ length: 6 }, () => bal.pick(r)!.id);
    assert.deepEqual(ids, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('skips backends that are down, and tries them anyway when all are', () => {
    const h = new PassiveHealth({ baseCooloffMs: 10_000 });
    const bal = new Balancer(h);
    const a = rb('a', 1);
    const b = rb('b', 2);
    const r = route(a, b);
    h.markFailure('t', a);
    assert.deepEqual([bal.pick(r)!.id, bal.pick(r)!.id, bal.pick(r)!.id], ['b', 'b', 'b']);
    h.markFailure('t', b);
    assert.ok(bal.pick(r), 'all down: still tries one');
  });

  it('never picks a backend already tried for this request', () => {
    const bal = new Balancer(new PassiveHealth());
    const r = route(rb('a', 1), rb('b', 2));
    assert.equal(bal.pick(r, new Set(['a']))!.id, 'b');
    assert.equal(bal.pick(r, new Set(['a', 'b'])), null);
    assert.equal(bal.pick(route()), null);
  });
});

describe('retry policy', () => {
  const f = (kind: string, phase: string, notSent: boolean, bodyConsumed = false) => ({ kind, phase, notSent, bodyConsumed });
  it('retries anything that never reached the backend', () => {
    assert.equal(mayRetry('POST', true, f('refused', 'connect', true)), true);
    assert.equal(mayRetry('POST', true, f('timeout', 'connect', true)), true);
  });
  it('retries a reset only for body-less idempotent requests', () => {
    assert.equal(mayRetry('GET', false, f('reset', 'request', false)), true);
    assert.equal(mayRetry('HEAD', false, f('reset', 'request', false)), true);
    assert.equal(mayRetry('POST', false, f('reset', 'request', false)), false);
    assert.equal(mayRetry('PUT', true, f('reset', 'request', false)), false);
  });
  it('never retries once body bytes were consumed, a response timeout, or a bad answer', () => {
    assert.equal(mayRetry('PUT', true, f('reset', 'request', false, true)), false);
    assert.equal(mayRetry('GET', false, f('timeout', 'request', false)), false);
    assert.equal(mayRetry('GET', false, f('bad_gateway', 'response', false)), false);
    assert.equal(mayRetry('GET', false, f('client_gone', 'request', false)), false);
  });
});
