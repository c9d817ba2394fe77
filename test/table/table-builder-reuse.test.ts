import assert from 'node:assert/strict';
import { RouteTable } from '../../src/table/route-table';
import type { RouteTableBuilder } from '../../src/table/table-builder';
import { assignment } from '../proxy/helpers';

const V1 = { epoch: 'e1', version: 1 };
const V2 = { epoch: 'e1', version: 2 };

function backend(b: RouteTableBuilder, tool: string, port: number, extra: { id?: string; held?: true } = {}): void {
  b.backend({ tool, id: extra.id ?? 'a', url: `http://127.0.0.1:${port}`, source: 'registered', ...(extra.held ? { held: true } : {}) });
}

/** Tools a..e with a backend and an assignment each, f with an assignment only, g with a backend only. */
function first(): RouteTable {
  const b = RouteTable.builder();
  for (const [i, tool] of ['a', 'b', 'c', 'd', 'e'].entries()) {
    backend(b, tool, 5000 + i);
    b.assignment(assignment(tool, 5000 + i));
  }
  b.assignment(assignment('f', 6000));
  backend(b, 'g', 7000);
  return b.build(V1);
}

function described(t: RouteTable, tool: string): string {
  const r = t.lookup(tool);
  if (!r) return 'absent';
  return [...r.backends.map((x) => `${x.id} ${x.url}${x.held ? ' held' : ''}`), ...r.assignments.map((x) => `@${x.host}:${x.port}`)].join(', ');
}

describe('RouteTable.builder(previous): a reload keeps the entries of tools that did not change', () => {
  it('the same records make the same routes (the same objects), in either order of backends and assignments', () => {
    const old = first();
    const before = ['a', 'b', 'f', 'g'].map((tool) => old.lookup(tool));
    for (const assignmentsFirst of [false, true]) {
      const b = RouteTable.builder(old);
      const backends = () => {
        for (const [i, tool] of ['a', 'b', 'c', 'd', 'e'].entries()) backend(b, tool, 5000 + i);
        backend(b, 'g', 7000);
      };
      const assignments = () => {
        for (const [i, tool] of ['a', 'b', 'c', 'd', 'e'].entries()) b.assignment(assignment(tool, 5000 + i));
        b.assignment(assignment('f', 6000));
      };
      if (assignmentsFirst) assignments();
      backends();
      if (!assignmentsFirst) assignments();
      const next = b.build(V2);
      ['a', 'b', 'f', 'g'].forEach((tool, i) => assert.equal(next.lookup(tool), before[i], `${tool} is the same route object`));
      assert.deepEqual([next.routeCount, next.backendCount, next.assignmentCount], [old.routeCount, old.backendCount, old.assignmentCount]);
      assert.equal(next.version, 2);
    }
  });

  it('what changed, and only that, is new: a moved backend, a held mark, a lost assignment or backend, a second backend, a tool gone', () => {
    const old = first();
    const b = RouteTable.builder(old);
    backend(b, 'a', 5000);
    backend(b, 'b', 5901); // moved
    backend(b, 'c', 5002, { held: true }); // lease lapsed, kept by self-preservation
    backend(b, 'd', 5003);
    backend(b, 'e', 5004);
    backend(b, 'e', 5904, { id: 'second' });
    backend(b, 'f', 6000); // came up on its port
    b.assignment(assignment('a', 5000));
    b.assignment(assignment('b', 5001));
    b.assignment(assignment('c', 5002));
    // d's assignment released; e's kept; f's kept; g deregistered.
    b.assignment(assignment('e', 5004));
    b.assignment(assignment('f', 6000));
    assert.equal(b.hasBackend('g', 'a', 'http://127.0.0.1:7000'), false, 'no record of g was read');
    assert.equal(b.hasTool('g'), false);
    const next = b.build(V2);
    assert.equal(next.lookup('a'), old.lookup('a'));
    assert.equal(described(next, 'b'), 'a http://127.0.0.1:5901, @127.0.0.1:5001');
    assert.equal(described(next, 'c'), 'a http://127.0.0.1:5002 held, @127.0.0.1:5002');
    assert.equal(described(next, 'd'), 'a http://127.0.0.1:5003');
    assert.equal(described(next, 'e'), 'a http://127.0.0.1:5004, second http://127.0.0.1:5904, @127.0.0.1:5004');
    assert.equal(described(next, 'f'), 'a http://127.0.0.1:6000, @127.0.0.1:6000');
    assert.equal(described(next, 'g'), 'absent');
    assert.deepEqual([next.routeCount, next.backendCount, next.assignmentCount], [5, 7, 5]);
    // The old table is as it was.
    assert.equal(described(old, 'd'), 'a http://127.0.0.1:5003, @127.0.0.1:5003');
    assert.equal(described(old, 'f'), '@127.0.0.1:6000');
    assert.equal(described(old, 'g'), 'a http://127.0.0.1:7000');
  });

  it('a part no record confirmed is left out: hasBackend says no until its record is read', () => {
    const old = first();
    const b = RouteTable.builder(old);
    b.assignment(assignment('a', 5000));
    assert.equal(b.hasTool('a'), true);
    assert.equal(b.hasBackend('a', 'a', 'http://127.0.0.1:5000'), false, 'only its assignment was read');
    backend(b, 'b', 5001);
    const next = b.build(V2);
    assert.equal(described(next, 'a'), '@127.0.0.1:5000');
    assert.equal(described(next, 'b'), 'a http://127.0.0.1:5001');
    assert.deepEqual([next.routeCount, next.backendCount, next.assignmentCount], [1, 1, 1]);
  });

  it('restart() forgets what it took over, as it forgets the rest', () => {
    const old = first();
    const b = RouteTable.builder(old);
    backend(b, 'a', 5000);
    b.restart();
    b.assignment(assignment('a', 5000));
    assert.equal(described(b.build(V2), 'a'), '@127.0.0.1:5000');
  });
});
