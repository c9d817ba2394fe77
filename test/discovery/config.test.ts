import assert from 'node:assert/strict';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config';

describe('discovery configuration', () => {
  it('has the documented defaults', () => {
    const d = loadConfig({ env: {} }).discovery;
    assert.deepEqual(d, {
      enabled: true,
      healthPath: null,
      probeBudgetMs: 300,
      negativeCacheMs: 2000,
      reconcileIntervalMs: 10_000,
      settleMs: 500,
      registry: null,
      token: null,
    });
  });

  it('takes the registry and token of a proxy-only process from SWITCHBOARD_REGISTRY and SWITCHBOARD_TOKEN', () => {
    const c = loadConfig({ env: { SWITCHBOARD_REGISTRY: 'http://10.0.0.5:8282', SWITCHBOARD_TOKEN: 'sbt_abcdefghijkl_0123456789' } });
    assert.equal(c.discovery.registry, 'http://10.0.0.5:8282');
    assert.equal(c.discovery.token, 'sbt_abcdefghijkl_0123456789');
    assert.equal(redactedConfig(c).discovery.token, '[redacted]');
    assert.equal(loadConfig({ env: { SWITCHBOARD_REGISTRY: '' } }).discovery.registry, null);
  });

  it('refuses bad values, naming the key', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ enabled: 'yes' }, /^discovery\.enabled: must be true or false/],
      [{ healthPath: 'healthz' }, /^discovery\.healthPath: must be null or a path starting with "\/"/],
      [{ healthPath: '/a b' }, /^discovery\.healthPath/],
      [{ probeBudgetMs: 0 }, /^discovery\.probeBudgetMs: must be an integer in 10\.\.60000/],
      [{ negativeCacheMs: -1 }, /^discovery\.negativeCacheMs/],
      [{ reconcileIntervalMs: 1.5 }, /^discovery\.reconcileIntervalMs/],
      [{ registry: 'redis://x:1' }, /^discovery\.registry: must be the registry's http:\/\/ or https:\/\/ URL/],
      [{ token: 'short' }, /^discovery\.token: must be 16\.\.512 printable characters/],
      [{ probeBudget: 1 }, /^discovery\.probeBudget \(in overrides\): unknown configuration key/],
    ];
    for (const [discovery, message] of bad) {
      assert.throws(() => loadConfig({ env: {}, overrides: { discovery } }), (err: Error) => err instanceof ConfigError && message.test(err.message), JSON.stringify(discovery));
    }
    assert.throws(
      () => loadConfig({ env: { SWITCHBOARD_REGISTRY: 'not a url' } }),
      (err: Error) => err.message.startsWith('SWITCHBOARD_REGISTRY (discovery.registry): must be'),
    );
  });
});
