import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sourceOf } from '../../src/registry/auth-throttle';
import type { Store } from '../../src/registry/store';
import { Client, appTarget } from '../security/support';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';
import { startApi, storeKinds, type Api } from './harness';

/**
 * Failed authentications are limited per client address on the control port: past the limit a refusal is
 * 429 with Retry-After, counted and logged; a request with a correct token passes from that address all
 * the same. One count for the heartbeat fast path and the express routes.
 */

/** A well-formed tool token nobody issued: each one costs the registry a store read to refuse. */
const guess = () => `sbt_${'a'.repeat(12)}_${crypto.randomBytes(32).toString('base64url')}`;

for (const kind of storeKinds()) {
  describe(`failed authentications are limited per client address (${kind.name} store)`, function () {
    this.timeout(60_000);
    before(() => kind.before());
    after(() => kind.after());

    describe('the registry harness, 5 failures a minute', () => {
      let store: Store;
      let api: Api;
      let logs: CapturedLogs;

      beforeEach(async () => {
        store = await kind.create();
        logs = capturingLogger('info');
        api = await startApi({ store, logger: logs.logger, authFailuresPerMinute: 5, overrides: { ports: { min: 47000, max: 47002 } } });
      });
      afterEach(async () => {
        await api.close();
        await store.close();
      });

      it('past the limit 429 with Retry-After and a JSON error on both paths, counted and logged without the token; correct tokens still pass', async () => {
        const token = guess();
        const beat = (t: string) => api.call('PUT', '/v1/tools/echo/backends/e1', { token: t, json: { url: 'http://127.0.0.1:47000' } });
        const list = (t: string) => api.call('GET', '/v1/tools', { token: t });
        // Five failures, on either path, are answered 401 as before.
        for (let i = 0; i < 3; i++) assert.equal((await beat(token)).status, 401);
        for (let i = 0; i < 2; i++) assert.equal((await list(token)).status, 401);
        const answeredBefore = api.heartbeats!.answered;
        for (const r of [await beat(token), await list(token)]) {
          assert.equal(r.status, 429, r.text);
          assert.equal(r.body.error.code, 'too_many_auth_failures');
          assert.equal(r.body.error.field, null);
          assert.match(r.body.error.message, /too many failed authentications from 127\.0\.0\.1 .*retry after \d+ s/);
          const retryAfter = Number(r.headers.get('retry-after'));
          // 5 a minute: one more failure is allowed within 12 s.
          assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 12, `Retry-After ${r.headers.get('retry-after')}`);
        }
        assert.equal(api.heartbeats!.answered, answeredBefore + 1, 'the fast path answered the throttled heartbeat');

        // The admin and a tool with its own token are never locked out by another's guesses from their address.
        assert.equal((await list(api.config.adminToken!)).status, 200);
        const issued = await api.call('POST', '/v1/tools/echo/tokens');
        assert.equal(issued.status, 201);
        assert.equal((await beat(issued.body.token)).status, 200);
        assert.equal((await beat(token)).status, 429, 'the guesses are still throttled');

        const text = await api.metrics.registry.metrics();
        assert.equal(metricValue(text, 'switchboard_auth_throttled_total'), 3);
        assert.equal(metricValue(text, 'switchboard_auth_failures_total', { reason: 'invalid' }), 8);
        const lines = logs.events('auth.throttled');
        assert.equal(lines.length, 1, 'one line per address per minute, not one per refusal');
        assert.equal(lines[0].source, '127.0.0.1');
        assert.equal(lines[0].refused, 1);
        assert.equal(lines[0].limitPerMinute, 5);
        assert.ok(!logs.raw.join('\n').includes(token.slice(4)), 'no part of the guessed token is logged');
      });
    });

    describe('the production composition, default limit', () => {
      it('3,000 wrong bearer tokens from one address: about the first 100 get 401, the rest 429, and the admin still passes', async () => {
        const store = await kind.create();
        const target = await appTarget(store);
        const client = new Client(target.base, 8);
        try {
          const statuses = new Map<number, number>();
          for (let sent = 0; sent < 3000; sent += 50) {
            const batch = Array.from({ length: 50 }, (_, i) =>
              i % 2 === 0
                ? client.call('PUT', '/v1/tools/echo/backends/e1', { token: guess(), json: { url: 'http://127.0.0.1:20000' } })
                : client.call('GET', '/v1/tools', { token: guess() }),
            );
            for (const r of await Promise.all(batch)) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          }
          const refused = statuses.get(401) ?? 0;
          const throttled = statuses.get(429) ?? 0;
          console.log(`      3,000 guesses: ${refused} answered 401, ${throttled} answered 429`);
          assert.equal(refused + throttled, 3000, JSON.stringify([...statuses]));
          assert.ok(refused >= 100, 'the first 100 failures are answered 401');
          assert.ok(throttled >= 2500, `${throttled} answered 429`);
          assert.equal((await client.call('GET', '/v1/tools')).status, 200);
          const text = await (await fetch(`${target.base}/metrics`)).text();
          assert.equal(metricValue(text, 'switchboard_auth_throttled_total'), throttled);
        } finally {
          client.close();
          await target.close();
          await store.close();
        }
      });
    });
  });
}

describe('whose failures count together', () => {
  it('an IPv4 address (also when mapped into IPv6), an IPv6 /64', () => {
    assert.equal(sourceOf('127.0.0.1'), '127.0.0.1');
    assert.equal(sourceOf('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf('2001:0db8:0001:0002:0:0:1.2.3.4'), '2001:db8:1:2::/64');
    assert.equal(sourceOf(undefined), 'unknown');
  });
});
