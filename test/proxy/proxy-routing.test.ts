import assert from 'node:assert/strict';
import { createRouteBackend } from '../../src/table/route-backend';
import { StaticRoutes, assignment, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { type Backend, startBackend } from '../support/backend';

/** A backend that answers with its name and what it received. */
function echo(name: string) {
  return startBackend((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name, url: req.url, host: req.headers.host }));
  });
}

describe('proxy routing', () => {
  let a1: Backend;
  let a2: Backend;
  let b1: Backend;
  let p: TestProxy;
  const routes = new StaticRoutes();

  before(async () => {
    [a1, a2, b1] = await Promise.all([echo('a1'), echo('a2'), echo('b1')]);
    routes.table = tableOf(
      [backend('alpha', 'a1', a1.url), backend('alpha', 'a2', a2.url), backend('beta', 'b1', b1.url)],
      [assignment('alpha', a1.port), assignment('beta', b1.port), assignment('gamma', 29999)],
    );
    // holdMs 0: a tool without a backend gets its 503 at once, as before holding (test/proxy/proxy-hold.test.ts).
    p = await startProxy(routes, testConfig({ holdMs: 0 }, { domain: 'tools.test' }));
  });
  after(async () => {
    await p.close();
    await Promise.all([a1.close(), a2.close(), b1.close()]);
  });

  it('routes /<tool>/... by path and forwards the path and query unchanged', async () => {
    const r = await request(p.port, '/beta/api/v1/x%2Fy?q=1&r=%20');
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    assert.equal(body.name, 'b1');
    assert.equal(body.url, '/beta/api/v1/x%2Fy?q=1&r=%20');
    assert.match(String(r.headers['x-request-id']), /^[A-Za-z0-9._-]{1,128}$/);
  });

  it('routes by Host: <tool>.<domain>, keeping the Host for the backend', async () => {
    const r = await request(p.port, '/anything?x=1', { headers: { host: 'Beta.Tools.Test.:8080' } });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    assert.equal(body.name, 'b1');
    assert.equal(body.url, '/anything?x=1');
  });

  it('host routing wins over the path when both name a tool', async () => {
    const r = await request(p.port, '/alpha/x', { headers: { host: 'beta.tools.test' } });
    assert.equal(JSON.parse(r.body).name, 'b1');
    const viaPath = await request(p.port, '/beta/x', { headers: { host: 'tools.test' } });
    assert.equal(JSON.parse(viaPath.body).name, 'b1');
  });

  it('redirects /<tool> to /<tool>/ with 301, keeping the query', async () => {
    const r = await request(p.port, '/beta?a=1&b=%2F');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/beta/?a=1&b=%2F');
  });

  it('round-robins over the backends of a tool', async () => {
    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push(JSON.parse((await request(p.port, '/alpha/')).body).name);
    assert.deepEqual(names.slice().sort(), ['a1', 'a1', 'a1', 'a2', 'a2', 'a2']);
    assert.notEqual(names[0], names[1]);
  });

  it('404 "no such tool" for unknown tools and tricks, HTML and JSON', async () => {
    for (const path of ['/nope/', '/nope', '/%2e%2e/beta/', '//beta/', '/beta%2Fx/', '/']) {
      const html = await request(p.port, path, { headers: { accept: 'text/html' } });
      assert.equal(html.status, 404, path);
      assert.match(String(html.headers['content-type']), /text\/html/);
      assert.match(html.body, /No such tool/);
      const json = await request(p.port, path, { headers: { accept: 'application/json' } });
      assert.equal(json.status, 404, path);
      const err = JSON.parse(json.body).error;
      assert.equal(err.code, 'no_such_tool');
      assert.equal(err.requestId, json.headers['x-request-id']);
    }
    const named = JSON.parse((await request(p.port, '/nope/', { headers: { accept: 'application/json' } })).body).error;
    assert.equal(named.tool, 'nope');
    assert.match(named.message, /no such tool/);
  });

  it('503 "tool is not running" with Retry-After for a tool that holds ports but has no backend', async () => {
    const html = await request(p.port, '/gamma/x');
    assert.equal(html.status, 503);
    assert.ok(Number(html.headers['retry-after']) > 0);
    assert.match(html.body, /not running/);
    assert.match(html.body, /gamma/);
    assert.ok(html.body.includes(String(html.headers['x-request-id'])), 'names the request id');
    assert.ok(!html.body.includes('29999') && !html.body.includes('127.0.0.1'), 'no internal address');
    const json = await request(p.port, '/gamma/x', { headers: { accept: 'application/json, text/html' } });
    assert.equal(json.status, 503);
    assert.deepEqual(Object.keys(JSON.parse(json.body).error).sort(), ['code', 'field', 'message', 'requestId', 'tool']);
    assert.equal(JSON.parse(json.body).error.code, 'not_running');
  });

  it('counts requests by code and errors by kind', async () => {
    await request(p.port, '/nope/');
    await request(p.port, '/gamma/');
    const text = await p.metrics.registry.metrics();
    assert.match(text, /switchboard_proxy_requests_total\{code="200"\} \d+/);
    assert.match(text, /switchboard_proxy_requests_total\{code="404"\} \d+/);
    assert.match(text, /switchboard_proxy_errors_total\{kind="no_route"\} \d+/);
    assert.match(text, /switchboard_proxy_errors_total\{kind="not_running"\} \d+/);
    assert.match(text, /switchboard_proxy_request_duration_seconds_bucket\{le="0.0005"\}/);
  });
});

describe('proxy without a snapshot, and the no-live-backend hook', () => {
  let p: TestProxy | null = null;
  let b: Backend | null = null;
  afterEach(async () => {
    await p?.close();
    await b?.close();
    p = null;
    b = null;
  });

  it('answers 503 while the route source has no table yet', async () => {
    p = await startProxy(new StaticRoutes(null));
    const r = await request(p.port, '/any/', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).error.code, 'no_routes');
    assert.ok(r.headers['retry-after']);
  });

  it('asks onNoLiveBackend before answering 503, and uses the backend it finds', async () => {
    b = await echo('found');
    const found = createRouteBackend({ id: 'discovered-1', url: b.url, source: 'discovered' });
    const asked: string[] = [];
    const routes = new StaticRoutes(tableOf([], [assignment('gamma', b.port), assignment('delta', 1)]));
    p = await startProxy(routes, testConfig({ holdMs: 0 }), {
      hooks: {
        onNoLiveBackend: async (tool) => {
          asked.push(tool);
          return tool === 'gamma' ? found : null;
        },
      },
    });
    const ok = await request(p.port, '/gamma/x');
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).name, 'found');
    const no = await request(p.port, '/delta/x');
    assert.equal(no.status, 503);
    assert.deepEqual(asked, ['gamma', 'delta']);
  });
});
