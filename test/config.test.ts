import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfig, redactedConfig, SCHEMA } from '../src/config';
import { settingsOf } from '../src/config/settings';
import { cliArgs, writeConfig } from './support/process';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.proxy.port, 8080);
    assert.equal(c.control.port, 8282);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.redis.url, null);
    assert.equal(c.domain, null);
    assert.equal(c.adminToken, null);
    assert.equal(c.leases.defaultTtlSeconds, 30);
    assert.equal(c.leases.minTtlSeconds, 5);
    assert.equal(c.leases.maxTtlSeconds, 3600);
    assert.equal(c.leases.selfPreservation.threshold, 0.25);
    assert.equal(c.leases.selfPreservation.minFleet, 10);
    assert.equal(c.leases.selfPreservation.hardCapMultiplier, 10);
    assert.equal(c.proxy.engine, 'undici');
  });

  it('picks the forwarding engine from SWITCHBOARD_PROXY_ENGINE or proxy.engine', () => {
    assert.equal(loadConfig({ env: { SWITCHBOARD_PROXY_ENGINE: 'http-proxy' } }).proxy.engine, 'http-proxy');
    assert.equal(loadConfig({ env: {}, file: writeConfig({ proxy: { engine: 'http-proxy' } }) }).proxy.engine, 'http-proxy');
    assert.equal(loadConfig({ env: { SWITCHBOARD_PROXY_ENGINE: 'undici' }, file: writeConfig({ proxy: { engine: 'http-proxy' } }) }).proxy.engine, 'undici');
  });

  it('holds requests 5000 ms by default, at most 100 per tool; SWITCHBOARD_PROXY_HOLD_MS sets the hold, 0 turns it off; bad values name key and bounds', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.proxy.holdMs, 5000);
    assert.equal(c.proxy.holdMaxPerTool, 100);
    assert.equal(loadConfig({ env: { SWITCHBOARD_PROXY_HOLD_MS: '0' } }).proxy.holdMs, 0);
    assert.equal(loadConfig({ env: { SWITCHBOARD_PROXY_HOLD_MS: '250' } }).proxy.holdMs, 250);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_PROXY_HOLD_MS: '5s' } }), /SWITCHBOARD_PROXY_HOLD_MS \(proxy\.holdMs\): must be an integer in 0\.\.60000, got "5s"/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { holdMs: 60_001 } }) }), /proxy\.holdMs: must be an integer in 0\.\.60000, got 60001/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { holdMaxPerTool: 0 } }) }), /proxy\.holdMaxPerTool: must be an integer in 1\.\.100000, got 0/);
  });

  it('forwards with header names with "_" dropped, Via "switchboard" counted up to 1, Host "localhost" for HTTP/1.0 without one; a bad pseudonym or public host is named', () => {
    const c = loadConfig({ env: {} });
    assert.deepEqual([c.proxy.allowUnderscoreHeaders, c.proxy.via, c.proxy.maxVia, c.proxy.publicHost], [false, 'switchboard', 1, 'localhost']);
    const set = loadConfig({ env: {}, file: writeConfig({ proxy: { allowUnderscoreHeaders: true, via: 'edge-1', maxVia: 3, publicHost: 'tools.example.org:8443' } }) });
    assert.deepEqual([set.proxy.allowUnderscoreHeaders, set.proxy.via, set.proxy.maxVia, set.proxy.publicHost], [true, 'edge-1', 3, 'tools.example.org:8443']);
    for (const via of ['', 'two words', 'a,b', 'x'.repeat(65), '1.1 switchboard']) {
      assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { via } }) }), /^ConfigError: proxy\.via: must be 1\.\.64 characters of an HTTP token/, via);
    }
    for (const publicHost of ['', 'http://tools.example.org', 'tools.example.org/x', 'a b', '-x.org', 'x.org:']) {
      assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { publicHost } }) }), /^ConfigError: proxy\.publicHost: must be a host name or IPv4 address/, publicHost);
    }
  });

  it('applies file, then environment', () => {
    const file = writeConfig({ proxy: { port: 9000 }, control: { port: 9001 }, domain: 'tools.example.org' });
    const c = loadConfig({
      env: {
        SWITCHBOARD_CONFIG: file,
        SWITCHBOARD_CONTROL_PORT: '9100',
        REDIS_URL: 'redis://127.0.0.1:7000/2',
        SWITCHBOARD_ADMIN_TOKEN: 'a-very-long-admin-token',
        SWITCHBOARD_HOST: '0.0.0.0',
      },
    });
    assert.equal(c.proxy.port, 9000);
    assert.equal(c.control.port, 9100);
    assert.equal(c.domain, 'tools.example.org');
    assert.equal(c.redis.url, 'redis://127.0.0.1:7000/2');
    assert.equal(c.host, '0.0.0.0');
  });

  it('reads a sentinel list from the environment', () => {
    const c = loadConfig({ env: { SWITCHBOARD_REDIS_SENTINELS: '127.0.0.1:26379, [::1]:26380', SWITCHBOARD_REDIS_SENTINEL_NAME: 'mymaster' } });
    assert.deepEqual(c.redis.sentinels, [
      { host: '127.0.0.1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    assert.equal(c.redis.sentinelName, 'mymaster');
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['proxy port', { SWITCHBOARD_PROXY_PORT: 'abc' }, /SWITCHBOARD_PROXY_PORT \(proxy\.port\): must be an integer/],
    ['control port range', { SWITCHBOARD_CONTROL_PORT: '70000' }, /SWITCHBOARD_CONTROL_PORT \(control\.port\)/],
    ['redis url scheme', { REDIS_URL: 'http://127.0.0.1:6379' }, /REDIS_URL \(redis\.url\): must be a redis:\/\//],
    ['domain', { SWITCHBOARD_DOMAIN: 'Not A Domain' }, /SWITCHBOARD_DOMAIN \(domain\)/],
    ['short admin token', { SWITCHBOARD_ADMIN_TOKEN: 'short' }, /SWITCHBOARD_ADMIN_TOKEN \(adminToken\): must be 16/],
    ['host', { SWITCHBOARD_HOST: 'bad host!' }, /SWITCHBOARD_HOST \(host\)/],
    ['sentinels without a name', { SWITCHBOARD_REDIS_SENTINELS: '127.0.0.1:26379' }, /redis\.sentinelName: is required/],
    ['same ports', { SWITCHBOARD_PROXY_PORT: '9000', SWITCHBOARD_CONTROL_PORT: '9000' }, /control\.port\): must differ/],
    ['log level', { SWITCHBOARD_LOG_LEVEL: 'loud' }, /SWITCHBOARD_LOG_LEVEL \(log\.level\)/],
    ['engine', { SWITCHBOARD_PROXY_ENGINE: 'nginx' }, /SWITCHBOARD_PROXY_ENGINE \(proxy\.engine\): must be "undici" or "http-proxy"/],
  ];
  for (const [what, env, re] of bad) {
    it(`refuses a bad ${what} with a message naming the key`, () => {
      assert.throws(() => loadConfig({ env }), (err: Error) => err instanceof ConfigError && re.test(err.message));
    });
  }

  it('refuses unknown keys and bad values in a file, naming the key', () => {
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { prot: 1 } }) }), /proxy\.prot .*unknown configuration key/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ leases: { defaultTtlSeconds: 2 } }) }), /leases\.defaultTtlSeconds: must be an integer in 5\.\.3600/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ allowedNetworks: ['10.0.0.0/33'] }) }), /allowedNetworks/);
  });

  describe('messages name the bounds each number setting is held to', () => {
    // With Redis configured: redis.waitReplicas > 0 is refused without it, whatever its bounds.
    const env = { REDIS_URL: 'redis://127.0.0.1:6379' };
    const at = (key: string, value: unknown): Record<string, unknown> =>
      key.split('.').reduceRight<unknown>((inner, name) => ({ [name]: inner }), value) as Record<string, unknown>;
    const refusal = (key: string, value: unknown): string | null => {
      try {
        loadConfig({ env, overrides: at(key, value) });
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    };
    for (const [key, setting] of settingsOf(SCHEMA).filter(([, s]) => s.type === 'integer' || s.type === 'number')) {
      it(key, () => {
        const words = setting.type === 'integer' ? 'an integer' : 'a number';
        const named = new RegExp(`^${key.replace(/\./g, '\\.')}: must be ${words} in (\\d+(?:\\.\\d+)?)\\.\\.(\\d+(?:\\.\\d+)?), got "x"$`).exec(refusal(key, 'x') ?? '');
        assert.ok(named, `${key}: ${refusal(key, 'x')}`);
        const [min, max] = [Number(named[1]), Number(named[2])];
        // Each bound named is accepted (another setting may then object), one past it is refused in the same words.
        for (const v of [min, max]) assert.ok(!refusal(key, v)?.startsWith(`${key}:`), `${key} = ${v}: ${refusal(key, v)}`);
        for (const v of [min - 1, max + 1]) assert.equal(refusal(key, v), `${key}: must be ${words} in ${min}..${max}, got ${v}`);
      });
    }
  });

  it('accepts the example production config', () => {
    const c = loadConfig({ env: {}, file: 'config/production.example.json' });
    assert.equal(c.redis.sentinels.length, 3);
    assert.equal(c.redis.sentinelName, 'switchboard');
  });

  it('redacts secrets for logging', () => {
    const c = loadConfig({ env: { SWITCHBOARD_ADMIN_TOKEN: 'a-very-long-admin-token', REDIS_URL: 'redis://:hunter2hunter2@127.0.0.1:6390' } });
    const text = JSON.stringify(redactedConfig(c));
    assert.ok(!text.includes('a-very-long-admin-token'));
    assert.ok(!text.includes('hunter2hunter2'));
  });

  describe('durability keys', () => {
    const secret = (c: string) => c.repeat(40);

    it('defaults: dataDir "auto" resolved from the env given, no snapshot path, a 5 s interval, no token secrets', () => {
      const c = loadConfig({ env: { HOME: '/home/op' } });
      assert.equal(c.dataDir, '/home/op/.local/share/switchboard');
      assert.equal(c.registry.snapshotPath, null);
      assert.equal(c.registry.snapshotIntervalMs, 5000);
      assert.equal(c.registry.tokenSecret, null);
      assert.deepEqual(c.registry.previousTokenSecrets, []);
    });

    it('resolves "auto" from SWITCHBOARD_DATA_DIR, else XDG_DATA_HOME, else HOME, else null; never from process.env', () => {
      const env = { SWITCHBOARD_DATA_DIR: '/srv/sb', XDG_DATA_HOME: '/xdg', HOME: '/home/op' };
      assert.equal(loadConfig({ env }).dataDir, '/srv/sb');
      assert.equal(loadConfig({ env: { XDG_DATA_HOME: '/xdg', HOME: '/home/op' } }).dataDir, '/xdg/switchboard');
      assert.equal(loadConfig({ env: { HOME: '/home/op' } }).dataDir, '/home/op/.local/share/switchboard');
      assert.equal(loadConfig({ env: {} }).dataDir, null);
      // A relative XDG_DATA_HOME is invalid by the XDG rules: ignored, not an error about a key nobody set.
      assert.equal(loadConfig({ env: { XDG_DATA_HOME: 'rel/data', HOME: '/home/op' } }).dataDir, '/home/op/.local/share/switchboard');
      assert.equal(loadConfig({ env: { HOME: 'relative' } }).dataDir, null);
      // An empty variable turns it off; a file's "auto" resolves from the env given too; a file's path stays.
      assert.equal(loadConfig({ env: { SWITCHBOARD_DATA_DIR: '', HOME: '/home/op' } }).dataDir, null);
      assert.equal(loadConfig({ env: { XDG_DATA_HOME: '/xdg' }, file: writeConfig({ dataDir: 'auto' }) }).dataDir, '/xdg/switchboard');
      assert.equal(loadConfig({ env: { HOME: '/home/op' }, file: writeConfig({ dataDir: '/var/lib/sb' }) }).dataDir, '/var/lib/sb');
      assert.equal(loadConfig({ env: { HOME: '/home/op' }, file: writeConfig({ dataDir: null }) }).dataDir, null);
    });

    it('reads SWITCHBOARD_SNAPSHOT_PATH and SWITCHBOARD_TOKEN_SECRET, and the rest from a file', () => {
      const c = loadConfig({ env: { SWITCHBOARD_SNAPSHOT_PATH: '/var/lib/sb/copy.json', SWITCHBOARD_TOKEN_SECRET: secret('s') } });
      assert.equal(c.registry.snapshotPath, '/var/lib/sb/copy.json');
      assert.equal(c.registry.tokenSecret, secret('s'));
      const f = loadConfig({ env: {}, file: writeConfig({ registry: { snapshotIntervalMs: 100, tokenSecret: secret('t'), previousTokenSecrets: [secret('p'), secret('q')] } }) });
      assert.equal(f.registry.snapshotIntervalMs, 100);
      assert.equal(f.registry.tokenSecret, secret('t'));
      assert.deepEqual(f.registry.previousTokenSecrets, [secret('p'), secret('q')]);
      assert.equal(loadConfig({ env: { SWITCHBOARD_TOKEN_SECRET: '' } }).registry.tokenSecret, null);
    });

    const badDurability: Array<[string, { env?: Record<string, string>; file?: Record<string, unknown> }, RegExp]> = [
      ['relative data dir', { env: { SWITCHBOARD_DATA_DIR: 'data' } }, /^SWITCHBOARD_DATA_DIR \(dataDir\): must be null, "auto" or an absolute directory path, got "data"$/],
      ['data dir type', { file: { dataDir: 7 } }, /^dataDir: must be null, "auto" or an absolute directory path, got 7$/],
      ['relative snapshot path', { env: { SWITCHBOARD_SNAPSHOT_PATH: 'copy.json' } }, /^SWITCHBOARD_SNAPSHOT_PATH \(registry\.snapshotPath\): must be null or an absolute file path/],
      ['snapshot interval too short', { file: { registry: { snapshotIntervalMs: 99 } } }, /^registry\.snapshotIntervalMs: must be an integer in 100\.\.3600000, got 99$/],
      ['snapshot interval too long', { file: { registry: { snapshotIntervalMs: 3_600_001 } } }, /^registry\.snapshotIntervalMs: must be an integer in 100\.\.3600000/],
      ['short token secret', { env: { SWITCHBOARD_TOKEN_SECRET: 'x'.repeat(31) } }, /^SWITCHBOARD_TOKEN_SECRET \(registry\.tokenSecret\): must be 32\.\.512 printable characters without spaces/],
      ['token secret with a space', { file: { registry: { tokenSecret: `${'x'.repeat(20)} ${'x'.repeat(20)}` } } }, /^registry\.tokenSecret: must be 32\.\.512 printable/],
      ['long token secret', { file: { registry: { tokenSecret: 'x'.repeat(513) } } }, /^registry\.tokenSecret: must be 32\.\.512/],
      ['previous secrets not a list', { file: { registry: { previousTokenSecrets: 'x'.repeat(40) } } }, /^registry\.previousTokenSecrets: must be a list of at most 16 secrets of 32\.\.512 printable characters/],
      ['a short previous secret', { file: { registry: { previousTokenSecrets: ['x'.repeat(40), 'short'] } } }, /^registry\.previousTokenSecrets: must be a list of at most 16 secrets of 32\.\.512/],
      ['17 previous secrets', { file: { registry: { previousTokenSecrets: Array.from({ length: 17 }, () => 'x'.repeat(40)) } } }, /^registry\.previousTokenSecrets: must be a list of at most 16/],
    ];
    for (const [what, src, re] of badDurability) {
      it(`refuses a bad ${what} with a message naming the key and its bounds`, () => {
        assert.throws(
          () => loadConfig({ env: src.env ?? {}, file: src.file ? writeConfig(src.file) : undefined }),
          (err: Error) => err instanceof ConfigError && re.test(err.message),
        );
      });
    }

    it('redacts registry.tokenSecret and registry.previousTokenSecrets, keeping how many there are', () => {
      const c = loadConfig({ env: { SWITCHBOARD_TOKEN_SECRET: secret('s') }, file: writeConfig({ registry: { previousTokenSecrets: [secret('p'), secret('q')] } }) });
      const r = redactedConfig(c);
      const text = JSON.stringify(r);
      for (const s of ['s', 'p', 'q']) assert.ok(!text.includes(secret(s)), s);
      assert.equal(r.registry.tokenSecret, '[redacted]');
      assert.deepEqual(r.registry.previousTokenSecrets, ['[redacted]', '[redacted]']);
      assert.equal(c.registry.tokenSecret, secret('s'), 'the config itself is untouched');
      assert.equal(redactedConfig(loadConfig({ env: {} })).registry.tokenSecret, null);
    });
  });

  it('stops the CLI with exit code 2 and the key in the message', function () {
    this.timeout(20_000);
    const r = spawnSync(process.execPath, cliArgs(['serve']), { env: { PATH: process.env.PATH, SWITCHBOARD_PROXY_PORT: 'eighty' }, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /configuration error: SWITCHBOARD_PROXY_PORT \(proxy\.port\)/);
  });
});
