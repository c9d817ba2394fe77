import assert from 'node:assert/strict';
import type { PolicyRecord } from '../../src/registry/types';
import { StaticRoutes, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend, type Backend } from '../support/backend';
import { capturingLogger } from '../support/logs';
import { metricValue } from '../support/metrics';
import { waitFor } from '../support/wait';

const UA = { 'user-agent': 'test-client/1.0' };

describe('proxy bans and maintenance (operator policies)', () => {
  let web: Backend;
  let p: TestProxy;
  const captured = capturingLogger('info');
  const routes = new StaticRoutes();

  function withPolicies(policies: PolicyRecord[]): void {
    routes.set(tableOf([backend('web', 'w1', web.url), backend('api', 'a1', web.url)], [], policies));
  }
  const refusals = async (reason: string) => metricValue(await p.metrics.registry.metrics(), 'switchboard_policy_refusals_total', { reason });

  before(async () => {
    web = await startBackend((_req, res) => res.end('ok'));
    withPolicies([]);
    p = await startProxy(routes, testConfig({ accessLog: true }), { logger: captured.logger });
  });
  after(async () => {
    await p.close();
    await web.close();
  });

  it('answers 403 `banned` to a banned address, as HTML and JSON, with the request id and without the reason', async () => {
    withPolicies([{ kind: 'block', id: 'lo', cidr: '127.0.0.0/8', reason: 'secret note', updatedAt: 1 }]);
    const before = await refusals('banned');
    const html = await request(p.port, '/web/', { headers: UA });
    assert.equal(html.status, 403);
    assert.match(String(html.headers['content-type']), /^text\/html/);
    assert.ok(html.body.includes(String(html.headers['x-request-id'])));
    assert.ok(!html.body.includes('secret note'));
    const json = await request(p.port, '/web/', { headers: { ...UA, accept: 'application/json' } });
    assert.equal(json.status, 403);
    const body = JSON.parse(json.body) as { error: { code: string; requestId: string; message: string } };
    assert.equal(body.error.code, 'banned');
    assert.equal(body.error.requestId, json.headers['x-request-id']);
    assert.ok(!json.body.includes('secret note'));
    assert.equal((await refusals('banned')) - before, 2);
    const lines = captured.events('access').filter((l) => l.requestId === json.headers['x-request-id']);
    assert.equal(lines[0]?.outcome, 'banned');
    assert.equal(lines[0]?.status, 403);
  });

  it('lets through an address no ban covers, and a ban scoped to another tool', async () => {
    withPolicies([
      { kind: 'block', id: 'far', cidr: '192.0.2.0/24', updatedAt: 1 },
      { kind: 'block', id: 'api-only', cidr: '127.0.0.1', tool: 'api', updatedAt: 1 },
    ]);
    assert.equal((await request(p.port, '/web/', { headers: UA })).status, 200);
    assert.equal((await request(p.port, '/api/', { headers: UA })).status, 403);
  });

  it('judges the client a trusted proxy names in X-Forwarded-For, never an untrusted claim', async () => {
    withPolicies([{ kind: 'block', id: 'xff', cidr: '198.51.100.7', updatedAt: 1 }]);
    // Here the peer (127.0.0.1) is no trusted proxy: its X-Forwarded-For is a claim, not the client.
    assert.equal((await request(p.port, '/web/', { headers: { ...UA, 'x-forwarded-for': '198.51.100.7' } })).status, 200);
    const behind = await startProxy(routes, testConfig({ trustedProxies: ['127.0.0.0/8'] }));
    try {
      assert.equal((await request(behind.port, '/web/', { headers: { ...UA, 'x-forwarded-for': '198.51.100.7' } })).status, 403);
      assert.equal((await request(behind.port, '/web/', { headers: { ...UA, 'x-forwarded-for': '198.51.100.8' } })).status, 200);
    } finally {
      await behind.close();
    }
  });

  it('refuses a User-Agent a pattern matches, and passes one it does not', async () => {
    withPolicies([{ kind: 'block', id: 'bot', userAgent: '^EvilBot/\\d', updatedAt: 1 }]);
    const refused = await request(p.port, '/web/', { headers: { 'user-agent': 'EvilBot/2.1', accept: 'application/json' } });
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.body).error.code, 'banned');
    assert.equal((await request(p.port, '/web/', { headers: { 'user-agent': 'GoodBot/2.1' } })).status, 200);
  });

  it('shows the reason only with proxy.banReasonOnPage', async () => {
    const routesWithReason = new StaticRoutes(tableOf([backend('web', 'w1', web.url)], [], [{ kind: 'block', id: 'lo', cidr: '127.0.0.1', reason: 'abuse desk: mail us', updatedAt: 1 }]));
    const shown = await startProxy(routesWithReason, testConfig({ banReasonOnPage: true }));
    try {
      const r = await request(shown.port, '/web/', { headers: UA });
      assert.equal(r.status, 403);
      assert.match(r.body, /abuse desk: mail us/);
    } finally {
      await shown.close();
    }
  });

  it('stops applying a ban once it expires', async () => {
    withPolicies([{ kind: 'block', id: 'short', cidr: '127.0.0.1', updatedAt: 1, expiresAt: Date.now() + 300 }]);
    assert.equal((await request(p.port, '/web/', { headers: UA })).status, 403);
    await waitFor('the ban to expire', async () => (await request(p.port, '/web/', { headers: UA })).status === 200, 5000);
    withPolicies([{ kind: 'block', id: 'old', cidr: '127.0.0.1', updatedAt: 1, expiresAt: Date.now() - 1 }]);
    assert.equal((await request(p.port, '/web/', { headers: UA })).status, 200);
  });

  it('answers the maintenance page of a tool, and of every tool under the global switch, with Retry-After from until', async () => {
    const until = Date.now() + 120_000;
    withPolicies([{ kind: 'tool', tool: 'web', maintenance: { message: 'Upgrading the database', until }, updatedAt: 1 }]);
    const down = await request(p.port, '/web/', { headers: UA });
    assert.equal(down.status, 503);
    assert.match(down.body, /Upgrading the database/);
    const retry = Number(down.headers['retry-after']);
    assert.ok(retry > 60 && retry <= 120, `Retry-After ${retry}`);
    assert.equal((await request(p.port, '/api/', { headers: UA })).status, 200);
    withPolicies([{ kind: 'maintenance', message: 'Planned outage', updatedAt: 1 }]);
    const all = await request(p.port, '/api/', { headers: { ...UA, accept: 'application/json' } });
    assert.equal(all.status, 503);
    assert.equal(JSON.parse(all.body).error.code, 'maintenance');
    assert.equal(JSON.parse(all.body).error.message, 'Planned outage');
    assert.equal(all.headers['retry-after'], undefined);
  });
});

describe('proxy.requireUserAgent', () => {
  it('refuses a request without a User-Agent with 403 `user_agent` when on, and lets it through when off', async () => {
    let web: Backend | null = null;
    const proxies: TestProxy[] = [];
    try {
      web = await startBackend((_req, res) => res.end('ok'));
      const routes = new StaticRoutes(tableOf([backend('web', 'w1', web.url)]));
      const strict = await startProxy(routes, testConfig({ requireUserAgent: true }));
      proxies.push(strict);
      const lax = await startProxy(routes, testConfig());
      proxies.push(lax);
      const refused = await request(strict.port, '/web/', { headers: { accept: 'application/json' } });
      assert.equal(refused.status, 403);
      assert.equal(JSON.parse(refused.body).error.code, 'user_agent');
      assert.equal(metricValue(await strict.metrics.registry.metrics(), 'switchboard_policy_refusals_total', { reason: 'user_agent' }), 1);
      assert.equal((await request(strict.port, '/web/', { headers: UA })).status, 200);
      assert.equal((await request(lax.port, '/web/')).status, 200);
    } finally {
      for (const x of proxies) await x.close();
      await web?.close();
    }
  });
});
