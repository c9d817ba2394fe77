import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { silentLogger } from '../../src/logger';
import { MemoryStore } from '../../src/registry/memory-store';
import { HeartbeatRefusals } from '../../src/registry/heartbeat-refusals';
import { tokenIdOf } from '../../src/registry/tokens';
import { startApi, type Api } from './harness';
import { startBackend } from '../support/backend';
import { capturingLogger, CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';

// After Redis restarted empty, launchers kept heartbeating with tokens the registry no longer knew: every
// heartbeat got 401, nothing counted or logged them, and the tools' routes lapsed unnoticed.

/** A well-formed tool token the registry has never issued: its id and secret, and the token. */
function unknownToken(): { id: string; secret: string; token: string } {
  const id = Array.from(crypto.randomBytes(12), (b) => 'abcdefghijklmnopqrstuvwxyz234567'[b & 31]).join('');
  const secret = crypto.randomBytes(32).toString('base64url');
  return { id, secret, token: `sbt_${id}_${secret}` };
}

for (const fastPath of [true, false]) {
  describe(`refused heartbeats are counted, logged and followed per tool (${fastPath ? 'fast path' : 'express'})`, function () {
    this.timeout(20_000);
    let api: Api;
    let logs: CapturedLogs;
    let backend: Awaited<ReturnType<typeof startBackend>>;

    beforeEach(async () => {
      const captured = capturingLogger();
      logs = captured;
      backend = await startBackend('ok');
      api = await startApi({ store: new MemoryStore(), logger: captured.logger, fastPath });
    });
    afterEach(async () => {
      await api.close();
      await backend.close();
      await api.store.close();
    });

    const beat = (token: string | null, tool = 'wiki-bot', body: unknown = { url: backend.url, ttl: 45 }) =>
      api.call('PUT', `/v1/tools/${tool}/backends/a1`, { token, json: body });

    it('a token sent without the Bearer scheme gets a 401 that says how the header is written', async () => {
      const token = api.config.adminToken!;
      for (const authorization of [token, `Token ${token}`]) {
        const r = await api.call('PUT', '/v1/tools/wiki-bot/backends/a1', { token: null, headers: { authorization }, json: { url: backend.url } });
        assert.equal(r.status, 401, r.text);
        assert.equal(r.body.error.code, 'invalid_token');
        assert.match(r.body.error.message, /must read "Bearer <token>"/);
        assert.ok(!r.text.includes(token), 'the answer never repeats the token');
      }
    });

    it('counts each refusal by reason, logs the tool and token id but never the token, and exports since when', async () => {
      const bad = unknownToken();
      for (let i = 0; i < 5; i++) assert.equal((await beat(bad.token)).status, 401);
      assert.equal((await beat(null, 'other-tool')).status, 401);
      assert.equal((await api.call('PUT', '/v1/tools/other-tool/backends/a1', { token: null, headers: { authorization: 'Basic d2lraQ==' }, json: {} })).status, 401);
      if (fastPath) assert.ok(api.heartbeats!.answered >= 7, 'the fast path answered them');

      const text = await api.metrics.registry.metrics();
      console.log(`      auth failures: invalid ${metricValue(text, 'switchboard_auth_failures_total', { reason: 'invalid' })}, missing ${metricValue(text, 'switchboard_auth_failures_total', { reason: 'missing' })}, malformed ${metricValue(text, 'switchboard_auth_failures_total', { reason: 'malformed' })}`);
      assert.equal(metricValue(text, 'switchboard_auth_failures_total', { reason: 'invalid' }), 5);
      assert.equal(metricValue(text, 'switchboard_auth_failures_total', { reason: 'missing' }), 1);
      assert.equal(metricValue(text, 'switchboard_auth_failures_total', { reason: 'malformed' }), 1);
      assert.ok(metricValue(text, 'switchboard_heartbeat_refused_seconds', { tool: 'wiki-bot' }) >= 0);
      assert.equal(metricValue(text, 'switchboard_heartbeat_refused_ttl_seconds', { tool: 'wiki-bot' }), 45, 'the ttl the body asked for');

      const refused = logs.events('auth.refused').filter((l) => l.tool === 'wiki-bot');
      assert.equal(refused.length, 1, 'one line for the tool within the interval, not one per refusal');
      assert.equal(refused[0].tool, 'wiki-bot');
      assert.equal(refused[0].tokenId, bad.id);
      assert.equal(refused[0].reason, 'invalid');
      assert.equal(refused[0].count, 1);
      const all = logs.raw.join('\n');
      assert.ok(!all.includes(bad.token), 'the token is never logged');
      assert.ok(!all.includes(bad.secret), 'nor its secret');
    });

    it('a heartbeat accepted again removes the tool\'s series', async () => {
      const bad = unknownToken();
      assert.equal((await beat(bad.token)).status, 401);
      let text = await api.metrics.registry.metrics();
      assert.ok(metricValue(text, 'switchboard_heartbeat_refused_seconds', { tool: 'wiki-bot' }) >= 0);
      const issued = await api.call('POST', '/v1/tools/wiki-bot/tokens');
      assert.equal(issued.status, 201);
      // A port of the range: a tool token registers nowhere else unless its tool holds the port.
      const inRange = { url: `http://127.0.0.1:${api.config.ports.min}`, ttl: 45 };
      assert.equal((await beat(issued.body.token as string, 'wiki-bot', inRange)).status, 200);
      text = await api.metrics.registry.metrics();
      assert.ok(Number.isNaN(metricValue(text, 'switchboard_heartbeat_refused_seconds', { tool: 'wiki-bot' })));
      assert.ok(Number.isNaN(metricValue(text, 'switchboard_heartbeat_refused_ttl_seconds', { tool: 'wiki-bot' })));
    });

    it('a path that fails the tool-name validator is counted and logged without a tool; a signed token logs its id', async () => {
      const bad = unknownToken();
      assert.equal((await beat(bad.token, 'Not_A_Tool')).status, 401);
      const signed = `sbs_citation-hunt_${bad.id}_${crypto.randomBytes(32).toString('base64url')}`;
      assert.equal((await beat(signed, 'citation-hunt', { url: backend.url })).status, 401);
      const refused = logs.events('auth.refused');
      assert.equal(refused.length, 2);
      assert.equal('tool' in refused[0], false, 'no tool: the path segment is arbitrary input');
      assert.equal(refused[1].tool, 'citation-hunt');
      assert.equal(refused[1].tokenId, bad.id);
      const text = await api.metrics.registry.metrics();
      assert.equal(metricValue(text, 'switchboard_heartbeat_refused_ttl_seconds', { tool: 'citation-hunt' }), 30, 'no ttl asked: the default');
      assert.ok(!logs.raw.join('\n').includes(signed));
    });
  });
}

describe('HeartbeatRefusals: runs of refusals per tool', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('logs one line per tool per interval with the count of refusals it stands for', () => {
    const logs = capturingLogger();
    const { logger } = logs;
    const r = new HeartbeatRefusals({ logger, now: clock, logIntervalMs: 30_000 });
    for (let i = 0; i < 1000; i++) r.refused({ tool: 'wiki-bot', tokenId: 'abcdefghijkl', reason: 'invalid', ttlSeconds: 30 });
    now += 30_000;
    r.refused({ tool: 'wiki-bot', tokenId: 'abcdefghijkl', reason: 'invalid', ttlSeconds: 30 });
    const refused = logs.events('auth.refused');
    console.log(`      1001 refusals over 30 s: ${refused.length} lines, counts ${refused.map((l) => l.count).join(' + ')}`);
    assert.deepEqual(refused.map((l) => l.count), [1, 1000]);
    assert.equal(refused[1].refusingForSeconds, 30);
  });

  it('ends a run after no refusal for 2 x ttl; since when restarts with the next refusal', () => {
    const r = new HeartbeatRefusals({ logger: silentLogger(), now: clock });
    r.refused({ tool: 'wiki-bot', tokenId: null, reason: 'missing', ttlSeconds: 10 });
    now += 15_000;
    r.refused({ tool: 'wiki-bot', tokenId: null, reason: 'missing', ttlSeconds: 10 });
    assert.deepEqual(r.current(), [{ tool: 'wiki-bot', seconds: 15, ttlSeconds: 10 }]);
    now += 20_001;
    assert.deepEqual(r.current(), [], 'no refusal for more than 2 x 10 s: over');
    r.refused({ tool: 'wiki-bot', tokenId: null, reason: 'missing', ttlSeconds: 10 });
    assert.deepEqual(r.current(), [{ tool: 'wiki-bot', seconds: 0, ttlSeconds: 10 }]);
  });

  it('follows at most maxTools tools', () => {
    const r = new HeartbeatRefusals({ logger: silentLogger(), now: clock, maxTools: 3 });
    for (let i = 0; i < 10; i++) r.refused({ tool: `t${i}`, tokenId: null, reason: 'invalid', ttlSeconds: 30 });
    assert.equal(r.current().length, 3);
  });
});

describe('tokenIdOf', () => {
  it('finds the id of sbt_ and sbs_ tokens and nothing else', () => {
    const t = unknownToken();
    assert.equal(tokenIdOf(`Bearer ${t.token}`), t.id);
    assert.equal(tokenIdOf(`Bearer sbs_wiki-bot_${t.id}_${t.secret}`), t.id);
    assert.equal(tokenIdOf(`Bearer sbt_${t.id}_short`), null);
    assert.equal(tokenIdOf(`Bearer sbs_Bad_Tool_${t.id}_${t.secret}`), null);
    assert.equal(tokenIdOf('Basic d2lraQ=='), null);
    assert.equal(tokenIdOf(undefined), null);
  });
});
