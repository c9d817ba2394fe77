// RouteTable keeps its tools in hash shards so an update copies only the shards it touches. These
// tests hold it to a plain Map model through many random updates, and check what an update shares.
import assert from 'node:assert/strict';
import { RouteTable } from '../../src/table/route-table';
import type { Assignment, Backend, Change, ChangeEvent } from '../../src/registry/types';

function backend(tool: string, id: string, port: number): Backend {
  return { tool, id, url: `http://127.0.0.1:${port}`, source: 'registered', registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 };
}

function assignment(tool: string, port: number): Assignment {
  return { tool, host: '127.0.0.1', port, createdAt: 1 };
}

/** A small deterministic generator (mulberry32): failures replay. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the table should hold: tool -> backend id -> port, and tool -> assigned ports. */
interface Model {
  backends: Map<string, Map<string, number>>;
  assignments: Map<string, Set<number>>;
}

function checkAgainst(table: RouteTable, model: Model, tools: string[]): void {
  // The walk first: it sees routes not looked up yet, which a table may hold in another form.
  for (const route of table.tools()) {
    assert.deepEqual(new Map(route.backends.map((x) => [x.id, x.target.port])), model.backends.get(route.tool) ?? new Map(), `${route.tool} backends (walk)`);
    assert.deepEqual(new Set(route.assignments.map((x) => x.port)), model.assignments.get(route.tool) ?? new Set(), `${route.tool} assignments (walk)`);
  }
  let routes = 0;
  let backends = 0;
  let assignments = 0;
  for (const tool of tools) {
    const b = model.backends.get(tool) ?? new Map<string, number>();
    const a = model.assignments.get(tool) ?? new Set<number>();
    const route = table.lookup(tool);
    if (b.size === 0 && a.size === 0) {
      assert.equal(route, undefined, `${tool} should be gone`);
      continue;
    }
    assert.ok(route, `${tool} should be routed`);
    assert.equal(route.tool, tool);
    assert.deepEqual(new Map(route.backends.map((x) => [x.id, x.target.port])), b, `${tool} backends`);
    assert.deepEqual(new Set(route.assignments.map((x) => x.port)), a, `${tool} assignments`);
    assert.ok(Object.isFrozen(route) && Object.isFrozen(route.backends) && Object.isFrozen(route.assignments));
    if (b.size > 0) routes++;
    backends += b.size;
    assignments += a.size;
  }
  assert.equal(table.routeCount, routes);
  assert.equal(table.backendCount, backends);
  assert.equal(table.assignmentCount, assignments);
  const listed = [...table.tools()].map((r) => r.tool);
  assert.equal(listed.length, new Set(listed).size, 'tools() lists each tool once');
  assert.equal(listed.length, tools.filter((t) => table.lookup(t)).length, 'tools() lists every tool');
}

describe('RouteTable shards', () => {
  it('agrees with a plain map through 300 random batches of upserts and removals over 2,000 tools', () => {
    const random = rng(20261126);
    const tools = Array.from({ length: 2000 }, (_, i) => `t${i}`);
    const model: Model = { backends: new Map(), assignments: new Map() };
    const initial: Backend[] = [];
    const initialAssignments: Assignment[] = [];
    for (let i = 0; i < tools.length; i += 2) {
      initial.push(backend(tools[i], 'a', 20000 + i));
      initialAssignments.push(assignment(tools[i], 20000 + i));
      model.backends.set(tools[i], new Map([['a', 20000 + i]]));
      model.assignments.set(tools[i], new Set([20000 + i]));
    }
    let table = RouteTable.fromSnapshot({ epoch: 'e', version: 0, backends: initial, assignments: initialAssignments });
    checkAgainst(table, model, tools);
    for (let version = 1; version <= 300; version++) {
      const changes: Change[] = [];
      for (let n = 1 + Math.floor(random() * 8); n > 0; n--) {
        const tool = tools[Math.floor(random() * tools.length)];
        const id = ['a', 'b', 'c'][Math.floor(random() * 3)];
        const port = 20000 + Math.floor(random() * 40000);
        const b = model.backends.get(tool) ?? new Map<string, number>();
        const a = model.assignments.get(tool) ?? new Set<number>();
        switch (Math.floor(random() * 4)) {
          case 0:
            changes.push({ kind: 'backend.upsert', backend: backend(tool, id, port) });
            b.set(id, port);
            break;
          case 1:
            changes.push({ kind: 'backend.remove', tool, id, reason: 'deregistered' });
            b.delete(id);
            break;
          case 2:
            changes.push({ kind: 'assignment.upsert', assignment: assignment(tool, port) });
            a.add(port);
            break;
          default: {
            const held = [...a][0];
            if (held === undefined) break;
            changes.push({ kind: 'assignment.remove', tool, host: '127.0.0.1', port: held });
            a.delete(held);
          }
        }
        model.backends.set(tool, b);
        model.assignments.set(tool, a);
      }
      const ev: ChangeEvent = { epoch: 'e', version, changes };
      const before = table;
      table = table.withChanges([ev]);
      assert.equal(table.version, version);
      if (version % 25 === 0) checkAgainst(table, model, tools);
      // The old table is a snapshot: updates never reach into it.
      assert.equal(before.version, version - 1);
    }
    checkAgainst(table, model, tools);
  });

  it('an update keeps every untouched tool as the same object, and an old table unchanged', () => {
    const n = 20_000;
    const backends = Array.from({ length: n }, (_, i) => backend(`tool-${i}`, 'a', 20000 + (i % 40000)));
    const table = RouteTable.fromSnapshot({ epoch: 'e', version: 1, backends, assignments: [] });
    const next = table.withChanges([
      { epoch: 'e', version: 2, changes: [{ kind: 'backend.remove', tool: 'tool-7', id: 'a', reason: 'expired' }, { kind: 'backend.upsert', backend: backend('new-tool', 'a', 1234) }] },
    ]);
    let same = 0;
    for (let i = 0; i < n; i++) if (table.lookup(`tool-${i}`) === next.lookup(`tool-${i}`)) same++;
    assert.equal(same, n - 1, 'only the removed tool differs');
    assert.equal(next.lookup('tool-7'), undefined);
    assert.equal(next.lookup('new-tool')?.backends[0].target.port, 1234);
    assert.ok(table.lookup('tool-7'), 'the old table still routes it');
    assert.equal(table.lookup('new-tool'), undefined);
    assert.equal(next.routeCount, n);
    assert.equal(table.routeCount, n);
    assert.equal([...next.tools()].length, n);
  });

  it('a tool removed and added back, and an emptied table, behave like any other', () => {
    let table = RouteTable.fromSnapshot({ epoch: 'e', version: 1, backends: [backend('only', 'a', 1)], assignments: [] });
    table = table.withChanges([{ epoch: 'e', version: 2, changes: [{ kind: 'backend.remove', tool: 'only', id: 'a', reason: 'deregistered' }] }]);
    assert.equal(table.lookup('only'), undefined);
    assert.equal([...table.tools()].length, 0);
    assert.equal(table.routeCount, 0);
    table = table.withChanges([{ epoch: 'e', version: 3, changes: [{ kind: 'backend.upsert', backend: backend('only', 'a', 2) }] }]);
    assert.equal(table.lookup('only')?.backends[0].target.port, 2);
    assert.equal(RouteTable.empty().lookup('only'), undefined);
    assert.equal([...RouteTable.empty().tools()].length, 0);
  });
});
