import assert from 'node:assert/strict';
import { SelfPreservation } from '../../src/registry/self-preservation';
import type { ExpireCandidate } from '../../src/registry/types';

const policy = { threshold: 0.25, windowSeconds: 60, minFleet: 10, hardCapMultiplier: 10 };

function lapsed(n: number, expiresAt: number, ttl = 30): ExpireCandidate[] {
  return Array.from({ length: n }, (_, i) => ({ tool: `t${i}`, id: 'a', expiresAt, ttl }));
}

describe('self-preservation', () => {
  const now = 1_000_000_000;

  it('lets a few lapses through in a large fleet', () => {
    const sp = new SelfPreservation(policy);
    const d = sp.decide(now, lapsed(2, now - 1), 100);
    assert.equal(d.active, false);
    assert.equal(d.expire.length, 2);
  });

  it('pauses expiry when more than the threshold would lapse at once', () => {
    const sp = new SelfPreservation(policy);
    const d = sp.decide(now, lapsed(30, now - 1), 100);
    assert.equal(d.active, true);
    assert.equal(d.expire.length, 0);
    assert.equal(d.held.length, 30);
  });

  it('counts lapses already done in the window', () => {
    const sp = new SelfPreservation(policy);
    sp.record(now - 10_000, 20);
    // 20 already gone of a fleet of 100 at window start; 6 more makes 26 % > 25 %.
    assert.equal(sp.decide(now, lapsed(6, now - 1), 80).active, true);
    const later = new SelfPreservation(policy);
    later.record(now - 61_000, 20); // outside the window: forgotten
    assert.equal(later.decide(now, lapsed(6, now - 1), 80).active, false);
  });

  it('never engages below the minimum fleet size (small fleets still evict their dead)', () => {
    const sp = new SelfPreservation(policy);
    const d = sp.decide(now, lapsed(9, now - 1), 9);
    assert.equal(d.active, false);
    assert.equal(d.expire.length, 9);
  });

  it('still expires leases past the hard cap while paused', () => {
    const sp = new SelfPreservation(policy);
    const old = lapsed(5, now - 9 * 30_000); // last heartbeat 10 TTLs ago
    const fresh = lapsed(25, now - 1).map((c) => ({ ...c, tool: `f-${c.tool}` }));
    const d = sp.decide(now, [...old, ...fresh], 100);
    assert.equal(d.active, true);
    assert.deepEqual(d.expire.map((c) => c.tool).sort(), old.map((c) => c.tool).sort());
  });

  it('releases when the heartbeats come back', () => {
    const sp = new SelfPreservation(policy);
    assert.equal(sp.decide(now, lapsed(40, now - 1), 100).active, true);
    assert.equal(sp.decide(now + 1000, [], 100).active, false);
  });
});
