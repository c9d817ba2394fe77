import assert from 'node:assert/strict';
import type { StatusTool, ToolState } from '../../src/client/status-report';
import { EVERY_TOOL, QueryError, globMatch, parseStatusQuery, queryParams, selectTools, toolMatcher } from '../../src/control/status-filter';
import { withLostTools } from '../../src/control/status-tools';
import { parseState, toolState } from '../../src/control/tool-state';

function tool(name: string, state: ToolState, rps: number | null = null, ratio: number | null = null): StatusTool {
  const traffic = rps === null ? null : { requests: rps * 60, serverErrors: 0, requestsPerSecond: rps, serverErrorRatio: ratio };
  return { tool: name, state, url: null, traffic, backends: [], assignments: [] };
}

const backend = (source: 'registered' | 'discovered', held = false) => ({
  id: 'b',
  url: 'http://127.0.0.1:1',
  source,
  leaseSecondsLeft: 1,
  expiresAt: null,
  health: 'ok' as const,
  ...(held ? { held: true as const } : {}),
});

describe('status filter', () => {
  it('a tool is in one state, the most pressing first', () => {
    assert.equal(toolState({ backends: [backend('registered')] }, true), 'lost');
    assert.equal(toolState({ backends: [backend('registered'), backend('registered', true)] }, false), 'held');
    assert.equal(toolState({ backends: [] }, false), 'not_running');
    assert.equal(toolState({ backends: [backend('registered'), backend('discovered')] }, false), 'discovered');
    assert.equal(toolState({ backends: [backend('registered')] }, false), 'live');
    for (const s of ['not running', 'not-running', 'NOT_RUNNING']) assert.equal(parseState(s), 'not_running');
    assert.equal(parseState('dead'), null);
  });

  it('lost tools are marked, and those the data no longer holds are added, in name order', () => {
    const tools = withLostTools([tool('a', 'live'), tool('c', 'live')], ['c', 'b']);
    assert.deepEqual(tools.map((t) => [t.tool, t.state]), [['a', 'live'], ['b', 'lost'], ['c', 'lost']]);
  });

  it('matches part of a name, or a glob of the whole name', () => {
    assert.ok(toolMatcher('eb')('web'));
    assert.ok(toolMatcher('WEB')('web-1'));
    assert.ok(!toolMatcher('web-*')('my-web-1'));
    assert.ok(toolMatcher('*web-?')('my-web-1'));
    assert.ok(!toolMatcher('*web-?')('my-web-12'));
    assert.ok(toolMatcher('')('anything'));
    assert.ok(globMatch('a*b*c', 'axxbyyc') && !globMatch('a*b*c', 'axxbyy'));
  });

  it('a glob made to backtrack costs linear time, not exponential (the pattern comes from anyone on the port)', () => {
    // With a backtracking regex this pattern against this name takes longer than the test's timeout.
    const pattern = `${'*a'.repeat(30)}*b`;
    const name = 'a'.repeat(63);
    for (let i = 0; i < 1000; i++) assert.equal(globMatch(pattern, name), false);
  });

  it('filters by state and name, sorts, and cuts a page, saying how many matched', () => {
    const tools = [tool('web', 'live', 5, 0), tool('api', 'held', 1, 0.5), tool('db', 'lost'), tool('auth', 'discovered', 9, 0.1), tool('idle', 'not_running', 0)];
    const names = (q: Partial<typeof EVERY_TOOL>) => selectTools(tools, { ...EVERY_TOOL, ...q }).tools.map((t) => t.tool);
    assert.deepEqual(names({}), ['api', 'auth', 'db', 'idle', 'web']);
    assert.deepEqual(names({ sort: 'state' }), ['db', 'api', 'idle', 'auth', 'web']);
    assert.deepEqual(names({ sort: 'rps' }), ['auth', 'web', 'api', 'idle', 'db']);
    assert.deepEqual(names({ sort: 'errors' }), ['api', 'auth', 'web', 'idle', 'db']);
    assert.deepEqual(names({ states: ['held', 'lost'] }), ['api', 'db']);
    assert.deepEqual(names({ tool: 'a' }), ['api', 'auth']);
    assert.deepEqual(selectTools(tools, { ...EVERY_TOOL, sort: 'rps', limit: 2, offset: 1 }), { matched: 5, tools: [tools[0], tools[1]] });
  });

  it('reads filters from parameters and flags, and refuses bad ones naming the field', () => {
    assert.deepEqual(parseStatusQuery({ tool: ' Web-* ', state: ['held,lost', 'not running', 'held'], sort: 'rps', limit: '10', offset: '20' }), {
      tool: 'web-*',
      states: ['held', 'lost', 'not_running'],
      sort: 'rps',
      limit: 10,
      offset: 20,
    });
    assert.deepEqual(parseStatusQuery({}), EVERY_TOOL);
    for (const [raw, field] of [
      [{ state: ['dead'] }, 'state'],
      [{ sort: 'size' }, 'sort'],
      [{ limit: '0' }, 'limit'],
      [{ limit: '1e3' }, 'limit'],
      [{ offset: '-1' }, 'offset'],
      [{ tool: 'x'.repeat(257) }, 'tool'],
    ] as const) {
      assert.throws(() => parseStatusQuery(raw), (err: unknown) => err instanceof QueryError && err.field === field, JSON.stringify(raw));
    }
    assert.equal(queryParams({ ...EVERY_TOOL, tool: 'a&b', states: ['held'], sort: 'rps' }).toString(), 'tool=a%26b&state=held&sort=rps');
  });
});
