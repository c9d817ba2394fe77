import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config';

describe('redis.waitReplicas / redis.waitTimeoutMs configuration', () => {
  it('is off by default', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.redis.waitReplicas, 0);
    assert.equal(c.redis.waitTimeoutMs, 500);
  });

  it('refuses it without Redis, and a wait that does not fit twice in a command timeout, naming the key', () => {
    assert.throws(() => loadConfig({ env: {}, overrides: { redis: { waitReplicas: 1 } } }), (err: Error) => err instanceof ConfigError && /redis\.waitReplicas.*needs Redis/.test(err.message));
    assert.throws(
      () => loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, overrides: { redis: { waitReplicas: 1, commandTimeoutMs: 1000, waitTimeoutMs: 600 } } }),
      (err: Error) => err instanceof ConfigError && /redis\.waitTimeoutMs: must be an integer in 1\.\.500/.test(err.message),
    );
    const ok = loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, overrides: { redis: { waitReplicas: 1, waitTimeoutMs: 300 } } });
    assert.equal(ok.redis.waitReplicas, 1);
  });
});
