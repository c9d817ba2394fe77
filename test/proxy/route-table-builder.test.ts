import assert from 'node:assert/strict';
import { parseTarget } from '../../src/table/backend-target';
import { RouteTable } from '../../src/table/route-table';
import type { Change, ChangeEvent } from '../../src/registry/types';
import { assignment } from './helpers';

describe('RouteTable.builder (a table built as a store reads it)', () => {
  it('builds the same routes as fromSnapshot, frozen, with the version it is given', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 'a', id: 'a1', url: 'http://127.0.0.1:5001', source: 'registered' });
    b.backend({ tool: 'b', id: 'b1', url: 'http://127.0.0.2:5002', source: 'discovered' });
    b.assignment(assignment('a', 5001));
    b.assignment(assignment('c', 9000, '127.0.0.3'));
    const t = b.build({ epoch: 'e1', version: 7 });
    assert.equal(t.epoch, 'e1');
    assert.equal(t.version, 7);
    assert.equal(t.routeCount, 2);
    assert.equal(t.backendCount, 2);
    assert.equal(t.assignmentCount, 2);
    const a = t.lookup('a')!;
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.backends) && Object.isFrozen(a.assignments) && Object.isFrozen(a.assignments[0]));
    assert.deepEqual(a.backends.map((x) => `${x.id} ${x.url} ${x.source}`), ['a1 http://127.0.0.1:5001 registered']);
    assert.deepEqual({ ...a.assignments[0] }, { tool: 'a', host: '127.0.0.1', port: 5001 });
    assert.equal(t.lookup('b')!.backends[0].source, 'discovered');
    assert.deepEqual(t.lookup('b')!.assignments, []);
    assert.deepEqual(t.lookup('c')!.backends, []);
    assert.equal(t.lookup('c')!.assignments[0].port, 9000);
  });

  it('forgets everything received before restart()', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 'old', id: 'x', url: 'http://127.0.0.1:5001', source: 'registered' });
    b.assignment(assignment('old', 5001));
    b.restart();
    b.backend({ tool: 'new', id: 'y', url: 'http://127.0.0.1:5002', source: 'registered' });
    const t = b.build({ epoch: 'e1', version: 2 });
    assert.equal(t.lookup('old'), undefined);
    assert.equal(t.routeCount, 1);
    assert.equal(t.assignmentCount, 0);
  });

  it('keeps the last of a record received twice, in place, and skips unroutable URLs', () => {
    const b = RouteTable.builder();
    for (let i = 0; i < 12; i++) b.backend({ tool: 't', id: `i${i}`, url: `http://127.0.0.1:${6000 + i}`, source: 'registered' });
    b.backend({ tool: 't', id: 'i3', url: 'http://127.0.0.1:7003', source: 'registered' });
    b.backend({ tool: 't', id: 'bad', url: 'ftp://127.0.0.1:21', source: 'registered' });
    b.assignment(assignment('t', 6000));
    b.assignment(assignment('t', 6000));
    const t = b.build({ epoch: 'e1', version: 1 });
    const r = t.lookup('t')!;
    assert.equal(r.backends.length, 12);
    assert.equal(r.backends[3].url, 'http://127.0.0.1:7003');
    assert.equal(r.assignments.length, 1);
  });

  it('answers hasBackend by tool and id, or by tool and url', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 't', id: 'a', url: 'http://127.0.0.1:5001', source: 'registered' });
    assert.equal(b.hasBackend('t', 'a', 'http://127.0.0.1:9'), true);
    assert.equal(b.hasBackend('t', 'z', 'http://127.0.0.1:5001'), true);
    assert.equal(b.hasBackend('t', 'z', 'http://127.0.0.1:9'), false);
    assert.equal(b.hasBackend('other', 'a', 'http://127.0.0.1:5001'), false);
  });

  it('freezes every list of a tool with lists, an empty one too (two assignments and no backend, or the reverse)', () => {
    const b = RouteTable.builder();
    b.assignment(assignment('ports', 5001));
    b.assignment(assignment('ports', 5002));
    b.backend({ tool: 'run', id: 'a', url: 'http://127.0.0.1:5001', source: 'registered' });
    b.backend({ tool: 'run', id: 'b', url: 'http://127.0.0.1:5002', source: 'registered' });
    const t = b.build({ epoch: 'e', version: 1 });
    for (const tool of ['ports', 'run']) {
      const r = t.lookup(tool)!;
      assert.ok(Object.isFrozen(r) && Object.isFrozen(r.backends) && Object.isFrozen(r.assignments), tool);
    }
    assert.deepEqual([t.lookup('ports')!.backends.length, t.lookup('run')!.assignments.length], [0, 0]);
  });

  it("parses a backend's target once, when it is first read, and keeps it", () => {
    const b = RouteTable.builder();
    for (const [i, url] of ['http://127.0.0.1:5001', 'http://127.0.0.1:5002/', 'https://svc.example:8443', 'http://[::1]:80'].entries()) {
      b.backend({ tool: `t${i}`, id: 'a', url, source: 'registered' });
    }
    const t = b.build({ epoch: 'e', version: 1 });
    for (const [i, url] of ['http://127.0.0.1:5001', 'http://127.0.0.1:5002/', 'https://svc.example:8443', 'http://[::1]:80'].entries()) {
      const backend = t.lookup(`t${i}`)!.backends[0];
      assert.ok(Object.isFrozen(backend), url);
      // Not an own property: nothing of the target is held until a request goes to the backend.
      assert.deepEqual(Object.keys(backend).sort(), ['held', 'id', 'prefix', 'source', 'url'], url);
      const target = backend.target;
      assert.deepEqual({ ...target }, { ...parseTarget(url)! }, url);
      assert.ok(Object.isFrozen(target), url);
      assert.equal(backend.target, target, `${url}: the same object on every read`);
    }
    assert.deepEqual({ ...t.lookup('t3')!.backends[0].target }, { protocol: 'http:', hostname: '::1', port: 80, origin: 'http://[::1]:80' });
  });

  describe('a tool with one backend and one assignment (held compactly until it is looked up)', () => {
    const row = (r: { tool: string; backends: readonly { id: string; url: string; source: string }[]; assignments: readonly { host: string; port: number }[] }) =>
      `${r.tool} [${r.backends.map((b) => `${b.id} ${b.url} ${b.source}`).join(', ')}] [${r.assignments.map((a) => `${a.host}:${a.port}`).join(', ')}]`;

    function table(): RouteTable {
      const b = RouteTable.builder();
      b.assignment(assignment('a', 5001));
      b.backend({ tool: 'a', id: 'a1', url: 'http://127.0.0.1:5001', source: 'discovered' });
      b.backend({ tool: 'b', id: 'b1', url: 'http://127.0.0.2:5002', source: 'registered' });
      b.assignment(assignment('c', 9000, '127.0.0.3'));
      // Received twice (a paged read may): still one backend, one assignment.
      b.backend({ tool: 'b', id: 'b1', url: 'http://127.0.0.2:5003', source: 'registered' });
      b.assignment(assignment('c', 9000, '127.0.0.3'));
      return b.build({ epoch: 'e', version: 1 });
    }

    it('walks the same routes as it looks up, before and after the lookups', () => {
      const t = table();
      const walked = [...t.tools()].map(row).sort();
      assert.deepEqual(walked, [
        'a [a1 http://127.0.0.1:5001 discovered] [127.0.0.1:5001]',
        'b [b1 http://127.0.0.2:5003 registered] []',
        'c [] [127.0.0.3:9000]',
      ]);
      assert.deepEqual(['a', 'b', 'c'].map((x) => row(t.lookup(x)!)), walked);
      assert.deepEqual([...t.tools()].map(row).sort(), walked);
      assert.deepEqual([t.routeCount, t.backendCount, t.assignmentCount], [2, 2, 2]);
    });

    it('forEachToolCounts counts each tool as its route has it, compact entries and list routes alike', () => {
      const two = table().withChanges([
        {
          epoch: 'e',
          version: 2,
          changes: [{ kind: 'backend.upsert', backend: { tool: 'b', id: 'b2', url: 'http://127.0.0.2:5009', source: 'discovered', registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 } }],
        },
      ]);
      const counted: string[] = [];
      two.forEachToolCounts((tool, registered, discovered, assignments) => counted.push(`${tool} ${registered} ${discovered} ${assignments}`));
      const fromRoutes = [...two.tools()].map(
        (r) => `${r.tool} ${r.backends.filter((b) => b.source === 'registered').length} ${r.backends.filter((b) => b.source === 'discovered').length} ${r.assignments.length}`,
      );
      assert.deepEqual(counted.sort(), fromRoutes.sort());
      assert.deepEqual(counted, ['a 0 1 1', 'b 1 1 0', 'c 0 0 1']);
    });

    it('answers the same frozen route object to every lookup, in this table and in tables that did not change it', () => {
      const t = table();
      const a = t.lookup('a')!;
      assert.ok(Object.isFrozen(a) && Object.isFrozen(a.backends) && Object.isFrozen(a.backends[0]) && Object.isFrozen(a.assignments[0]));
      assert.equal(t.lookup('a'), a);
      assert.equal(a.backends[0].target, a.backends[0].target, 'target parsed once');
      assert.ok([...t.tools()].includes(a), 'a walk hands out the route the lookups use');
      const next = t.withChanges([{ epoch: 'e', version: 2, changes: [{ kind: 'backend.remove', tool: 'b', id: 'b1', reason: 'expired' }] }]);
      assert.equal(next.lookup('a'), a);
      assert.equal(next.lookup('b'), undefined);
    });

    it('keeps the route on a renewal, and turns into a list route and back as backends come and go', () => {
      const t = table();
      const a = t.lookup('a')!;
      const ev = (version: number, changes: Change[]): ChangeEvent => ({ epoch: 'e', version, changes });
      const upsert = (id: string, port: number): Change => ({ kind: 'backend.upsert', backend: { tool: 'a', id, url: `http://127.0.0.1:${port}`, source: 'discovered', registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 } });
      const renewed = t.withChanges([ev(2, [upsert('a1', 5001)])]);
      assert.equal(renewed.lookup('a'), a, 'a renewal changes nothing');
      const two = renewed.withChanges([ev(3, [upsert('a2', 5002), { kind: 'assignment.upsert', assignment: { tool: 'a', host: '127.0.0.1', port: 5002, createdAt: 1 } }])]);
      assert.equal(row(two.lookup('a')!), 'a [a1 http://127.0.0.1:5001 discovered, a2 http://127.0.0.1:5002 discovered] [127.0.0.1:5001, 127.0.0.1:5002]');
      assert.equal(two.lookup('a')!.backends[0], a.backends[0], 'the backend kept its parsed object');
      assert.deepEqual([two.backendCount, two.assignmentCount], [3, 3]);
      const one = two.withChanges([ev(4, [{ kind: 'backend.remove', tool: 'a', id: 'a1', reason: 'expired' }, { kind: 'assignment.remove', tool: 'a', host: '127.0.0.1', port: 5001 }])]);
      assert.equal(row(one.lookup('a')!), 'a [a2 http://127.0.0.1:5002 discovered] [127.0.0.1:5002]');
      assert.equal(one.lookup('a'), one.lookup('a'));
      assert.deepEqual([one.routeCount, one.backendCount, one.assignmentCount], [2, 2, 2]);
      assert.equal(row(t.lookup('a')!), 'a [a1 http://127.0.0.1:5001 discovered] [127.0.0.1:5001]', 'the first table is as it was');
    });

    it('turns into a list route while the read is going on when a second backend or assignment comes', () => {
      const b = RouteTable.builder();
      b.backend({ tool: 'x', id: 'x1', url: 'http://127.0.0.1:5001', source: 'registered' });
      b.assignment(assignment('x', 5001));
      b.assignment(assignment('x', 5002));
      b.backend({ tool: 'x', id: 'x2', url: 'http://127.0.0.1:5002', source: 'registered' });
      b.backend({ tool: 'x', id: 'x1', url: 'http://127.0.0.1:5003', source: 'registered' });
      assert.ok(b.hasBackend('x', 'x2', 'nope') && b.hasBackend('x', 'nope', 'http://127.0.0.1:5003') && !b.hasBackend('x', 'x3', 'nope'));
      const t = b.build({ epoch: 'e', version: 1 });
      assert.equal(row(t.lookup('x')!), 'x [x1 http://127.0.0.1:5003 registered, x2 http://127.0.0.1:5002 registered] [127.0.0.1:5001, 127.0.0.1:5002]');
      assert.deepEqual([t.routeCount, t.backendCount, t.assignmentCount], [1, 2, 2]);
    });
  });
});
