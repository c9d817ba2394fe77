import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/logger';
import { resolveAdminToken } from '../../src/registry/tokens';
import { ADMIN_TOKEN } from './harness';

describe('resolveAdminToken', () => {
  it('answers the configured token and prints nothing', () => {
    const out = new PassThrough();
    const config = loadConfig({ env: {}, overrides: { adminToken: ADMIN_TOKEN } });
    assert.equal(resolveAdminToken(config, silentLogger(), out), ADMIN_TOKEN);
    assert.equal(out.read(), null);
  });

  it('generates a token when none is configured and prints it once', () => {
    const out = new PassThrough();
    const config = loadConfig({ env: {} });
    const token = resolveAdminToken(config, silentLogger(), out);
    assert.ok(token.length >= 32);
    const printed = String(out.read());
    assert.equal(printed.split(token).length - 1, 1);
    assert.notEqual(resolveAdminToken(config, silentLogger(), new PassThrough()), token);
  });
});
