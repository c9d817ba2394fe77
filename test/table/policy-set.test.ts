import assert from 'node:assert/strict';
import { PolicySet } from '../../src/table/policy-set';
import { RouteTable } from '../../src/table/route-table';
import type { ChangeEvent } from '../../src/table/records';

const backend = { tool: 'web', id: 'w1', url: 'http://127.0.0.1:4100', source: 'registered' as const, registeredAt: 1, lastHeartbeat: 1, expiresAt: 2, ttl: 30 };

describe('a route table carries the policies', () => {
  const base = RouteTable.fromSnapshot({ epoch: 'e', version: 1, backends: [backend], assignments: [] });
  const ev = (version: number, changes: ChangeEvent['changes']): ChangeEvent => ({ epoch: 'e', version, changes });

  it('keeps the very same PolicySet across route changes, a new one when a policy changes', () => {
    assert.equal(base.policies, PolicySet.EMPTY);
    assert.equal(base.policies.empty, true);
    const banned = base.withChanges([ev(2, [{ kind: 'policy.upsert', policy: { kind: 'block', id: 'b', cidr: '10.0.0.0/8', updatedAt: 1 } }])]);
    assert.equal(banned.policies.bans.length, 1);
    assert.equal(banned.lookup('web')?.backends.length, 1, 'the routes stay');
    const moved = banned.withChanges([ev(3, [{ kind: 'backend.remove', tool: 'web', id: 'w1', reason: 'deregistered' }])]);
    assert.equal(moved.policies, banned.policies);
    const policy = moved.withChanges([ev(4, [{ kind: 'policy.upsert', policy: { kind: 'tool', tool: 'web', maxConcurrent: 2, updatedAt: 1 } }])]);
    assert.equal(policy.policies.tools.get('web')?.maxConcurrent, 2);
    assert.equal(policy.policies.bans.length, 1);
    const cleared = policy.withChanges([ev(5, [{ kind: 'policy.remove', key: 'block:b' }, { kind: 'policy.remove', key: 'tool:web' }])]);
    assert.equal(cleared.policies, PolicySet.EMPTY);
  });

  it('makes the next ban index from the last one asked for, over several changes', () => {
    const first = base.withChanges([ev(2, [{ kind: 'policy.upsert', policy: { kind: 'block', id: 'a', cidr: '10.0.0.0/8', updatedAt: 1 } }])]);
    assert.equal(first.policies.banIndex().byAddress('10.1.1.1', 'web', 0)?.id, 'a');
    // Two changes before anyone asks: b added and a removed, then c added and b replaced.
    const second = first.withChanges([
      ev(3, [{ kind: 'policy.upsert', policy: { kind: 'block', id: 'b', cidr: '192.0.2.0/24', updatedAt: 1 } }, { kind: 'policy.remove', key: 'block:a' }]),
      ev(4, [{ kind: 'policy.upsert', policy: { kind: 'block', id: 'c', userAgent: '^Bad', updatedAt: 1 } }]),
    ]);
    const third = second.withChanges([ev(5, [{ kind: 'policy.upsert', policy: { kind: 'block', id: 'b', cidr: '198.51.100.0/24', updatedAt: 2 } }])]);
    const index = third.policies.banIndex();
    assert.equal(index.byAddress('10.1.1.1', 'web', 0), undefined, 'a removed');
    assert.equal(index.byAddress('192.0.2.9', 'web', 0), undefined, "b's old range replaced");
    assert.equal(index.byAddress('198.51.100.9', 'web', 0)?.id, 'b');
    assert.equal(index.byUserAgent('Bad/1', 'web', 0)?.id, 'c');
    assert.equal(first.policies.banIndex().byAddress('10.1.1.1', 'web', 0)?.id, 'a', 'the old table keeps its own index');
  });

  it('builds the policies of a snapshot, the last record of a key winning', () => {
    const t = RouteTable.fromSnapshot({
      epoch: 'e',
      version: 1,
      backends: [],
      assignments: [],
      policies: [
        { kind: 'maintenance', message: 'first', updatedAt: 1 },
        { kind: 'maintenance', message: 'second', updatedAt: 2 },
      ],
    });
    assert.equal(t.policies.maintenance?.message, 'second');
    assert.equal(t.policies.size, 1);
  });
});
