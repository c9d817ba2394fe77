import assert from 'node:assert/strict';
import { normaliseHost, resolveTool, toolFromHost } from '../../src/proxy/host';

describe('host: request -> tool', () => {
  it('normalises the Host header', () => {
    assert.equal(normaliseHost('Grafana.Tools.Example.ORG'), 'grafana.tools.example.org');
    assert.equal(normaliseHost('grafana.tools.example.org:8080'), 'grafana.tools.example.org');
    assert.equal(normaliseHost('grafana.tools.example.org.'), 'grafana.tools.example.org');
    assert.equal(normaliseHost('grafana.tools.example.org.:80'), 'grafana.tools.example.org');
    assert.equal(normaliseHost('[::1]:8080'), '::1');
    assert.equal(normaliseHost('[::1]'), '::1');
    assert.equal(normaliseHost('[zz]'), null);
    assert.equal(normaliseHost('[::1]x'), null);
    assert.equal(normaliseHost('a:b:c'), null);
    assert.equal(normaliseHost('a b'), null);
    assert.equal(normaliseHost(''), null);
    assert.equal(normaliseHost(undefined), null);
  });

  it('names a tool by <tool>.<domain>, one label only', () => {
    const d = 'tools.example.org';
    assert.equal(toolFromHost('grafana.tools.example.org', d), 'grafana');
    assert.equal(toolFromHost('GRAFANA.tools.example.org.:443', d), 'grafana');
    assert.equal(toolFromHost('tools.example.org', d), null);
    assert.equal(toolFromHost('a.b.tools.example.org', d), null);
    assert.equal(toolFromHost('grafanatools.example.org', d), null, 'suffix must start at a dot');
    assert.equal(toolFromHost('grafana.tools.example.org', null), null);
    assert.equal(toolFromHost('[::1]:80', d), null);
  });

  it('path routing: first segment, path unchanged', () => {
    assert.deepEqual(resolveTool('/grafana/', undefined, null), { kind: 'tool', tool: 'grafana', via: 'path' });
    assert.deepEqual(resolveTool('/grafana/api/x?y=1', 'localhost', null), { kind: 'tool', tool: 'grafana', via: 'path' });
  });

  it('/<tool> without a slash redirects, keeping the query', () => {
    assert.deepEqual(resolveTool('/grafana', undefined, null), { kind: 'redirect', tool: 'grafana', location: '/grafana/' });
    assert.deepEqual(resolveTool('/grafana?orgId=1&x=%2F', undefined, null), { kind: 'redirect', tool: 'grafana', location: '/grafana/?orgId=1&x=%2F' });
  });

  it('host routing wins when the host matches; path routing otherwise', () => {
    const d = 'tools.example.org';
    assert.deepEqual(resolveTool('/other/x', 'grafana.tools.example.org', d), { kind: 'tool', tool: 'grafana', via: 'host' });
    assert.deepEqual(resolveTool('/', 'grafana.tools.example.org', d), { kind: 'tool', tool: 'grafana', via: 'host' });
    assert.deepEqual(resolveTool('/grafana', 'grafana.tools.example.org', d), { kind: 'tool', tool: 'grafana', via: 'host' }, 'no redirect under host routing');
    assert.deepEqual(resolveTool('/other/x', 'tools.example.org', d), { kind: 'tool', tool: 'other', via: 'path' });
    assert.deepEqual(resolveTool('/other/x', 'elsewhere.org', d), { kind: 'tool', tool: 'other', via: 'path' });
    assert.deepEqual(resolveTool('/other/x', 'bad-.tools.example.org', d), { kind: 'none' }, 'the host names a tool, just not a valid one');
    assert.deepEqual(resolveTool('/other/x', 'bad_name.tools.example.org', d), { kind: 'tool', tool: 'other', via: 'path' }, 'not a host name at all');
  });

  it('tricks name no tool (or only the one named)', () => {
    for (const url of ['/%2e%2e/grafana/', '/%2E%2E/grafana/', '//grafana/', '/grafana%2Fx/', '/grafana%2fadmin', '/./grafana/', '/../grafana/', '/Grafana/', '/gr_afana/', '/-x/', '/', '', '*', 'http://grafana/x', '/%67rafana/']) {
      const r = resolveTool(url, undefined, null);
      assert.equal(r.kind, 'none', url);
    }
    // The named tool keeps the request, whatever comes after it.
    assert.deepEqual(resolveTool('/grafana/../other/', undefined, null), { kind: 'tool', tool: 'grafana', via: 'path' });
    assert.deepEqual(resolveTool('/grafana/%2e%2e/other/', undefined, null), { kind: 'tool', tool: 'grafana', via: 'path' });
    assert.deepEqual(resolveTool('/grafana//other/', undefined, null), { kind: 'tool', tool: 'grafana', via: 'path' });
  });
});
