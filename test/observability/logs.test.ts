import assert from 'node:assert/strict';
import { RedisServer, freePort } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { assignPort, heartbeat, viaProxy } from './helpers';
import { waitFor } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';
import { logLines, LogLine, logEvents } from '../support/logs';

function events(p: SwitchboardProcess, event: string): LogLine[] {
  return logEvents(p.output(), event, { strict: true });
}

function waitEvent(p: SwitchboardProcess, event: string, match: (l: LogLine) => boolean = () => true): Promise<LogLine> {
  return waitFor(`log event ${event}`, async () => events(p, event).find(match) ?? null, 15_000, 100);
}

describe('logs: one JSON line per event, never a secret', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let sb: SwitchboardProcess;
  let alpha: Backend;
  let healme: Backend | undefined;
  let healPort: number;
  const lapsing: Backend[] = [];
  let toolToken = '';
  const basicSecret = 'basic-password-4f1e7c0d2b9a';
  const queryToken = 'sbt_querytokenaa_QUERYSECRETqueryQUERYsecretQUERYsecretQUERYs1';

  before(async () => {
    redis = await new RedisServer().start();
    alpha = await startBackend('alpha');
    healPort = await freePort();
    sb = await startProcess('serve', {
      // The most talkative setting there is: trace level and the access log on.
      env: { REDIS_URL: redis.url, SWITCHBOARD_LOG_LEVEL: 'trace', SWITCHBOARD_ACCESS_LOG: 'true' },
      config: {
        proxy: { feedPollMs: 200 },
        ports: { min: healPort, max: healPort },
        leases: {
          minTtlSeconds: 1,
          expiryIntervalMs: 100,
          // A fleet of 6 where 4 lapse together engages self-preservation; a hard cap of 1 x TTL lets them
          // expire anyway, after which it releases.
          selfPreservation: { threshold: 0.25, windowSeconds: 60, minFleet: 3, hardCapMultiplier: 1 },
        },
      },
    });
  });
  after(async () => {
    await sb?.kill();
    for (const b of [alpha, healme, ...lapsing]) await b?.close();
    await redis?.stop();
  });

  it('logs the configuration at start, with secrets redacted', async () => {
    const loaded = await waitEvent(sb, 'config.loaded');
    const config = loaded.config as { adminToken: string; log: { level: string } };
    assert.equal(config.adminToken, '[redacted]');
    assert.equal(config.log.level, 'trace', 'the level comes from SWITCHBOARD_LOG_LEVEL');
  });

  it('logs a registration (created at info, renewed at debug) and a refused heartbeat', async () => {
    const issued = await fetch(`${sb.control}/v1/tools/alpha/tokens`, { method: 'POST', headers: { authorization: `Bearer ${sb.adminToken}` } });
    assert.equal(issued.status, 201);
    toolToken = ((await issued.json()) as { token: string }).token;
    assert.ok(toolToken.length > 20);

    // alpha's port is outside ports.min..max: the admin's heartbeat assigns it, then the tool's token may renew it.
    assert.equal((await heartbeat(sb, 'alpha', 'a1', { url: alpha.url, ttl: 30 })).status, 200);
    assert.equal((await heartbeat(sb, 'alpha', 'a1', { url: alpha.url, ttl: 30 }, toolToken)).status, 200);
    assert.equal((await heartbeat(sb, 'alpha', 'a2', { url: 'ftp://127.0.0.1:21' }, toolToken)).status, 400);

    const created = await waitEvent(sb, 'registration', (l) => l.result === 'created' && l.tool === 'alpha');
    assert.equal(created.level, 30);
    assert.equal(created.url, alpha.url);
    const renewed = await waitEvent(sb, 'registration', (l) => l.result === 'renewed' && l.tool === 'alpha');
    assert.equal(renewed.level, 20);
    const failed = await waitEvent(sb, 'registration.failed', (l) => l.tool === 'alpha');
    assert.equal(failed.result, 'rejected');
    assert.deepEqual(failed.error, { code: 'unsupported_scheme', field: 'url' });
  });

  it('logs lease expiry and self-preservation on and off', async () => {
    assert.equal((await heartbeat(sb, 'keeper', 'k1', { url: 'http://127.0.0.1:1', ttl: 60 })).status, 200);
    for (let i = 0; i < 4; i++) {
      const b = await startBackend(`lapse-${i}`);
      lapsing.push(b);
      assert.equal((await heartbeat(sb, `lapse-${i}`, 'l1', { url: b.url, ttl: 1 })).status, 200);
    }
    const on = await waitEvent(sb, 'self_preservation.on');
    assert.equal(on.level, 40);
    await waitEvent(sb, 'self_preservation.off');
    await waitFor('four lease.expired lines', async () => events(sb, 'lease.expired').filter((l) => String(l.tool).startsWith('lapse-')).length === 4, 15_000, 100);
  });

  it('logs a self-heal', async () => {
    assert.equal((await assignPort(sb, 'healme')).status, 200);
    // Started on its port after the assignment (the registry hands out no port that something listens on).
    healme = await startBackend('healme', { port: healPort });
    assert.equal(await viaProxy(sb, '/healme/'), 200);
    const heal = await waitEvent(sb, 'selfheal', (l) => l.tool === 'healme');
    assert.equal(heal.trigger, 'request');
  });

  it('access-logs requests without their query string or headers', async () => {
    await waitFor('alpha routed', async () => (await viaProxy(sb, '/alpha/')) === 200);
    const headers = { authorization: `Bearer ${toolToken}`, 'proxy-authorization': `Basic ${Buffer.from(`u:${basicSecret}`).toString('base64')}` };
    assert.equal(await viaProxy(sb, `/alpha/page?token=${toolToken}&access_token=${sb.adminToken}&x=${queryToken}`, headers), 200);
    assert.equal(await viaProxy(sb, `/alpha/page2`, { authorization: `Basic ${Buffer.from(`admin:${basicSecret}`).toString('base64')}` }), 200);
    assert.equal(await viaProxy(sb, `/nobody/?token=${queryToken}`, { authorization: `Bearer ${queryToken}` }), 404);
    // The registry too: tokens in the query string, a wrong token in the header.
    const api = await fetch(`${sb.control}/v1/tools?token=${sb.adminToken}`, { headers: { authorization: `Bearer ${queryToken}` } });
    assert.equal(api.status, 401);
    const access = await waitEvent(sb, 'access', (l) => l.path === '/alpha/page');
    assert.equal(access.status, 200);
    assert.equal(access.tool, 'alpha');
  });

  it('logs the store connection lost and restored', async () => {
    await redis.kill();
    try {
      await waitEvent(sb, 'store.lost');
      await waitEvent(sb, 'store.connection_lost');
    } finally {
      await redis.start();
    }
    await waitEvent(sb, 'store.restored');
  });

  it('logs shutdown, and no secret appeared in any line at trace level', async () => {
    await sb.kill('SIGTERM');
    await waitEvent(sb, 'shutdown');
    const out = sb.output();
    // Everything the process wrote is JSON lines (lines() throws on any other), each naming its event.
    const all = logLines(sb.output(), { strict: true });
    assert.ok(all.length > 20, `expected a talkative log, got ${all.length} lines`);
    const unnamed = all.filter((l) => typeof l.event !== 'string' || l.event === '');
    assert.deepEqual(unnamed, [], 'lines without an event field');
    const secrets: Array<[string, string]> = [
      ['admin token', sb.adminToken],
      ['tool token', toolToken],
      // sbt_<id>_<secret>: the secret may itself contain '_'.
      ['tool token secret part', toolToken.split('_').slice(2).join('_')],
      ['token sent in a query string and header', queryToken],
      ['Basic credentials', basicSecret],
      ['Basic header value', Buffer.from(`u:${basicSecret}`).toString('base64')],
    ];
    for (const [what, secret] of secrets) {
      assert.ok(secret.length >= 16, `${what}: too short to search for`);
      assert.ok(!out.includes(secret), `${what} appears in the log output`);
    }
    assert.doesNotMatch(out, /bearer /i, 'no Authorization header value');
  });

  it('a proxy-only process does not log the token it reports discoveries with', async () => {
    const reportToken = 'report-token-7d1c9e4b2a6f3081';
    const p = await startProcess('proxy', {
      env: { REDIS_URL: redis.url, SWITCHBOARD_LOG_LEVEL: 'trace', SWITCHBOARD_TOKEN: reportToken, SWITCHBOARD_REGISTRY: 'http://127.0.0.1:9' },
    });
    try {
      assert.equal(await viaProxy(p, `/nobody/?token=${reportToken}`, { authorization: `Bearer ${reportToken}` }), 404);
      await waitEvent(p, 'access', (l) => l.path === '/nobody/');
    } finally {
      await p.kill('SIGTERM');
    }
    const loaded = events(p, 'config.loaded')[0];
    assert.equal((loaded.config as { discovery: { token: string } }).discovery.token, '[redacted]');
    assert.ok(!p.output().includes(reportToken), 'the report token appears in the log output');
    assert.deepEqual(logLines(p.output(), { strict: true }).filter((l) => typeof l.event !== 'string'), []);
  });
});
