import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { silentLogger } from '../../src/logger';
import { ConfigError, loadConfig as load } from '../../src/config';
import { ADMIN_TOKEN_MIN_LENGTH, resolveAdminToken } from '../../src/registry/tokens';
import { spawnCli } from '../launcher/helpers';
import { startProcess } from '../support/process';
import { freePort } from '../support/redis-server';
import { ADMIN_TOKEN } from './harness';

describe('resolveAdminToken', () => {
  it('answers the configured token and prints nothing', () => {
    const out = new PassThrough();
    const config = load({ env: {}, overrides: { adminToken: ADMIN_TOKEN } });
    assert.equal(resolveAdminToken(config, silentLogger(), out), ADMIN_TOKEN);
    assert.equal(out.read(), null);
  });

  it('generates a token when none is configured and prints it once', () => {
    const out = new PassThrough();
    const config = load({ env: {} });
    const token = resolveAdminToken(config, silentLogger(), out);
    assert.ok(token.length >= 32);
    const printed = String(out.read());
    assert.equal(printed.split(token).length - 1, 1);
    assert.notEqual(resolveAdminToken(config, silentLogger(), new PassThrough()), token);
  });

  it('refuses a configured token shorter than 32 characters, naming the setting and the length', () => {
    assert.equal(ADMIN_TOKEN_MIN_LENGTH, 32);
    const short = load({ env: {}, overrides: { adminToken: 'x'.repeat(31) } });
    assert.throws(() => resolveAdminToken(short, silentLogger(), new PassThrough()), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^SWITCHBOARD_ADMIN_TOKEN \(adminToken\): must be at least 32 characters, got 31/);
      assert.ok(!err.message.includes('x'.repeat(31)), 'the token itself is not repeated');
      return true;
    });
    const enough = load({ env: {}, overrides: { adminToken: 'y'.repeat(32) } });
    assert.equal(resolveAdminToken(enough, silentLogger(), new PassThrough()), 'y'.repeat(32));
  });

  it('switchboard serve with a 31-character admin token exits 2 naming the setting; 32 characters start', async function () {
    this.timeout(30_000);
    const ports = { SWITCHBOARD_CONTROL_PORT: String(await freePort()), SWITCHBOARD_PROXY_PORT: String(await freePort()) };
    const refused = spawnCli(['serve'], { ...ports, SWITCHBOARD_ADMIN_TOKEN: 'z'.repeat(31) });
    assert.deepEqual(await refused.exited, { code: 2, signal: null });
    assert.match(refused.stderr(), /switchboard: configuration error: SWITCHBOARD_ADMIN_TOKEN \(adminToken\): must be at least 32 characters, got 31/);
    assert.ok(!(refused.stdout() + refused.stderr()).includes('z'.repeat(31)), 'the token is not printed');
    const sb = await startProcess('serve', { env: { SWITCHBOARD_ADMIN_TOKEN: 'z'.repeat(32) } });
    try {
      const r = await fetch(`${sb.control}/v1/tools`, { headers: { authorization: `Bearer ${'z'.repeat(32)}` } });
      assert.equal(r.status, 200);
    } finally {
      await sb.kill('SIGTERM');
    }
  });
});
