import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Change, ChangeEvent, RouteAssignment, RouteRecord } from '../../src/table/records';
import { RouteTable } from '../../src/table/route-table';
import { diffTables, dumpTable, parseTable } from '../../src/table/table-text';

/** What a table holds, as plain data and by tool name, read through lookups rather than the text form. */
function contents(t: RouteTable) {
  const tools = [...t.tools()].map((r) => r.tool).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    epoch: t.epoch,
    version: t.version,
    counts: [t.routeCount, t.backendCount, t.assignmentCount],
    tools: tools.map((tool) => {
      const r = t.lookup(tool)!;
      return {
        tool: r.tool,
        backends: r.backends.map((b) => ({ id: b.id, url: b.url, source: b.source, held: b.held, prefix: b.prefix })),
        assignments: r.assignments.map((a) => ({ tool: a.tool, host: a.host, port: a.port })),
      };
    }),
  };
}

const SEED = 20261207;
const params = { seed: SEED, numRuns: 400 };

/** Any UTF-16 code units: spaces, quotes, backslashes, control characters, lone surrogates. */
const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 6 });
/** Mostly a few names, so tools get several backends and removals find what they remove. */
const few = (...names: string[]) => fc.oneof({ arbitrary: fc.constantFrom(...names), weight: 4 }, { arbitrary: anyString, weight: 1 });
const toolArb = few('web', 'api', 'db');
const idArb = few('a', 'b', 'c');
const hostArb = few('127.0.0.1', '10.0.0.2');
const portArb = fc.oneof(fc.constantFrom(3000, 3001), fc.integer({ min: 1, max: 65535 }));
const urlArb = fc
  .tuple(
    fc.constantFrom('http', 'https'),
    fc.oneof(fc.ipV4(), fc.constantFrom('localhost', 'svc.internal', '[::1]', 'EXAMPLE.com')),
    fc.option(portArb, { nil: undefined }),
    fc.constantFrom('', '/', '/x'),
  )
  .map(([scheme, host, port, path]) => `${scheme}://${host}${port === undefined ? '' : `:${port}`}${path}`);
const recordArb: fc.Arbitrary<RouteRecord> = fc
  .record({
    tool: toolArb,
    id: idArb,
    url: fc.oneof({ arbitrary: urlArb, weight: 9 }, { arbitrary: fc.constant('ftp://x:21'), weight: 1 }),
    discovered: fc.boolean(),
    held: fc.boolean(),
    prefix: fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, { arbitrary: fc.constantFrom('/api', '/api/v2'), weight: 2 }, { arbitrary: anyString, weight: 1 }),
  })
  .map(({ tool, id, url, discovered, held, prefix }) => ({
    tool,
    id,
    url,
    source: discovered ? 'discovered' : 'registered',
    ...(held ? { held: true as const } : {}),
    ...(prefix !== undefined ? { prefix } : {}),
  }));
const assignmentArb = fc.record({ tool: toolArb, host: hostArb, port: portArb });
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  recordArb.map((b): Change => ({ kind: 'backend.upsert', backend: { ...b, registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 } })),
  fc.record({ tool: toolArb, id: idArb }).map(({ tool, id }): Change => ({ kind: 'backend.remove', tool, id, reason: 'expired' })),
  assignmentArb.map((a): Change => ({ kind: 'assignment.upsert', assignment: { ...a, createdAt: 1 } })),
  assignmentArb.map((a): Change => ({ kind: 'assignment.remove', ...a })),
);

/**
 * The records of a table as a store's read hands them over, and events that change it afterwards (so both
 * compact entries and routes with lists are made). The records, not the table, are what fast-check prints
 * for a counterexample.
 */
interface TableRecords {
  epoch: string;
  version: number;
  backends: RouteRecord[];
  assignments: RouteAssignment[];
  changes: Change[];
}

const tableRecordsArb: fc.Arbitrary<TableRecords> = fc.record({
  epoch: fc.oneof(fc.constantFrom('', 'e1'), anyString),
  version: fc.nat(),
  backends: fc.array(recordArb, { maxLength: 12 }),
  assignments: fc.array(assignmentArb, { maxLength: 8 }),
  changes: fc.array(changeArb, { maxLength: 10 }),
});

function tableOf({ epoch, version, backends, assignments, changes }: TableRecords): RouteTable {
  const t = RouteTable.fromSnapshot({ epoch, version, backends, assignments });
  const ev: ChangeEvent = { epoch, version: version + 1, changes };
  return changes.length > 0 ? t.withChanges([ev]) : t;
}

describe('the route table as text (dumpTable, parseTable, diffTables)', () => {
  it('writes one line per backend and assignment, tools by name, a tool in its own order', () => {
    const t = RouteTable.fromSnapshot({
      epoch: '5f0c2a',
      version: 42,
      backends: [
        { tool: 'web', id: 'web-2', url: 'http://127.0.0.1:4101', source: 'discovered', held: true },
        { tool: 'api', id: 'api-1', url: 'https://10.0.0.2:8443', source: 'registered' },
        { tool: 'web', id: 'web-1', url: 'http://127.0.0.1:4100', source: 'registered' },
      ],
      assignments: [
        { tool: 'web', host: '127.0.0.1', port: 4100 },
        { tool: 'idle', host: '127.0.0.1', port: 4200 },
      ],
    });
    assert.equal(
      dumpTable(t),
      [
        'table 5f0c2a 42',
        'backend api api-1 https://10.0.0.2:8443 registered',
        'assignment idle 127.0.0.1 4200',
        'backend web web-2 http://127.0.0.1:4101 discovered held',
        'backend web web-1 http://127.0.0.1:4100 registered',
        'assignment web 127.0.0.1 4100',
        '',
      ].join('\n'),
    );
    assert.deepEqual(contents(parseTable(dumpTable(t))), contents(t));
  });

  it('quotes a field that is not plain printable ASCII, and reads it back', () => {
    const t = RouteTable.fromSnapshot({
      epoch: '',
      version: 0,
      backends: [{ tool: 'my tool', id: 'a"b\\c', url: 'http://127.0.0.1:4100', source: 'registered' }],
      assignments: [{ tool: '\u001b[31mred', host: 'h\u00e9te', port: 1 }],
    });
    const text = dumpTable(t);
    assert.equal(
      text,
      ['table "" 0', 'assignment "\\u001b[31mred" "h\\u00e9te" 1', 'backend "my tool" "a\\"b\\\\c" http://127.0.0.1:4100 registered', ''].join('\n'),
    );
    assert.deepEqual(contents(parseTable(text)), contents(t));
  });

  it('reads blank lines, # comments and CRLF line ends; names the line of anything else', () => {
    const t = parseTable('# a comment\r\n\r\ntable e1 7\r\nbackend web a http://127.0.0.1:5000 registered\r\n  \r\nassignment web 127.0.0.1 5000\r\n');
    assert.deepEqual([t.epoch, t.version, t.routeCount, t.assignmentCount], ['e1', 7, 1, 1]);
    const bad: Array<[string, RegExp]> = [
      ['', /no "table <epoch> <version>" line/],
      ['backend web a http://127.0.0.1:5000 registered\n', /line 1: the first line must be/],
      ['table e1 -1\n', /line 1: "-1" is not a whole number/],
      ['table e1 1\nbackend web a http://127.0.0.1:5000 elsewhere\n', /line 2: source "elsewhere"/],
      ['table e1 1\nbackend web a ftp://127.0.0.1:21 registered\n', /line 2: "ftp:\/\/127.0.0.1:21" is not a URL the proxy can route to/],
      ['table e1 1\nbackend web a http://127.0.0.1:5000 registered gone\n', /line 2: not "backend/],
      ['table e1 1\nassignment web 127.0.0.1 70000\n', /line 2: "70000" is not a whole number from 0 to 65535/],
      ['table e1 1\n\nassignment "web 127.0.0.1 1\n', /line 3: a quoted field is not closed/],
      ['table e1 1\nassignment "web"x 127.0.0.1 1\n', /line 2: a space must follow a quoted field/],
      ['table e1 1\nassignment we"b 127.0.0.1 1\n', /line 2: "we\\"b" must be quoted/],
      ['table e1 1\nassignment "\\x" 127.0.0.1 1\n', /line 2: "\\x" is not a JSON string/],
      ['table e1 1\ntable e1 2\n', /line 2: not "backend/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseTable(text), why, JSON.stringify(text));
  });

  it('diffTables names the lines one table has and the other lacks, tool by tool', () => {
    const a = parseTable('table e1 1\nbackend web a http://127.0.0.1:5000 registered\nbackend web b http://127.0.0.1:5001 registered\nassignment db 127.0.0.1 6000\n');
    const b = a.withChanges([
      {
        epoch: 'e1',
        version: 2,
        changes: [
          { kind: 'backend.remove', tool: 'web', id: 'b', reason: 'expired' },
          { kind: 'backend.upsert', backend: { tool: 'api', id: 'x', url: 'http://127.0.0.1:7000', source: 'discovered', registeredAt: 1, lastHeartbeat: 1, expiresAt: 9e15, ttl: 30 } },
        ],
      },
    ]);
    assert.deepEqual(diffTables(a, b), [
      '- table e1 1',
      '+ table e1 2',
      '+ backend api x http://127.0.0.1:7000 discovered',
      '- backend web b http://127.0.0.1:5001 registered',
    ]);
    assert.deepEqual(diffTables(b, b), []);
  });

  it('property: parseTable(dumpTable(t)) holds what t holds, and writes the same text again', () => {
    fc.assert(
      fc.property(tableRecordsArb, (records) => {
        const t = tableOf(records);
        const text = dumpTable(t);
        const back = parseTable(text);
        assert.deepEqual(contents(back), contents(t));
        assert.equal(dumpTable(back), text);
        assert.deepEqual(diffTables(t, back), []);
        assert.match(text, /^[ -~\n]*$/, 'printable ASCII lines only');
        assert.equal(text.split('\n').length - 2, t.backendCount + t.assignmentCount, 'one line per backend and assignment');
      }),
      params,
    );
  });

  it('property: the lines diffTables(a, b) removes from and adds to a are those of b', () => {
    const linesOf = (t: RouteTable) => new Set(dumpTable(t).split('\n').filter((l) => l !== ''));
    fc.assert(
      fc.property(tableRecordsArb, tableRecordsArb, (recordsA, recordsB) => {
        const [a, b] = [tableOf(recordsA), tableOf(recordsB)];
        const diff = diffTables(a, b);
        const lines = linesOf(a);
        for (const d of diff) {
          assert.ok(d.startsWith('- ') || d.startsWith('+ '), d);
          if (d.startsWith('- ')) assert.ok(lines.delete(d.slice(2)), `removes a line a has: ${d}`);
          else lines.add(d.slice(2));
        }
        assert.deepEqual([...lines].sort(), [...linesOf(b)].sort());
        const swapped = diffTables(b, a).map((d) => (d.startsWith('- ') ? `+${d.slice(1)}` : `-${d.slice(1)}`));
        assert.deepEqual([...swapped].sort(), [...diff].sort());
      }),
      params,
    );
  });
});
