import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import { Registry } from '../../src/registry/registry';
import { tokenSigner } from '../../src/registry/token-keys';
import { Authenticator, generateSignedToken, generateToken, hashSecret, hmacSigner, parseSignedToken, type TokenSigner } from '../../src/registry/tokens';
import { RedisServer } from '../support/redis-server';

const ADMIN = 'test-admin-token-0123456789abcdef';
const SECRET_A = 'a'.repeat(40);
const SECRET_B = 'b'.repeat(40);

function config(overrides: Record<string, unknown>): Config {
  return loadConfig({ env: {}, overrides: { log: { level: 'silent' }, ...overrides } });
}

function signerOf(c: Config, kind: 'memory' | 'redis'): TokenSigner {
  const { signer } = tokenSigner(c, kind, silentLogger());
  assert.ok(signer, 'expected a signing key');
  return signer;
}

/** A clock the test moves: the Authenticator's revocation cache is judged by it. */
function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

async function toolOf(auth: Authenticator, token: string): Promise<string | null> {
  const r = await auth.authenticate(`Bearer ${token}`);
  if (!r.ok) return null;
  assert.equal(r.principal.kind, 'tool');
  return r.principal.kind === 'tool' ? r.principal.tool : null;
}

/** The token with one character of the given part replaced (the first: a mac's last character carries spare bits). */
function tampered(token: string, part: 'tool' | 'id' | 'mac'): string {
  const t = parseSignedToken(token);
  assert.ok(t);
  const swap = (s: string, alphabet: string) => (s[0] === alphabet[0] ? alphabet[1] : alphabet[0]) + s.slice(1);
  const next = { ...t, [part]: swap(t[part], part === 'mac' ? 'AB' : 'bc') };
  return `sbs_${next.tool}_${next.id}_${next.mac}`;
}

describe('signed tool tokens', () => {
  describe('hmacSigner', () => {
    it('verifies what it signed, for that tool and id only', () => {
      const s = hmacSigner([Buffer.from('k1')]);
      const mac = s.sign('alpha', 'abcdefghijkl');
      assert.match(mac, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(s.verify('alpha', 'abcdefghijkl', mac), true);
      assert.equal(s.verify('alphb', 'abcdefghijkl', mac), false);
      assert.equal(s.verify('alpha', 'abcdefghijkm', mac), false);
      assert.equal(s.verify('alpha', 'abcdefghijkl', mac.slice(0, 20)), false);
      assert.equal(hmacSigner([Buffer.from('k2')]).verify('alpha', 'abcdefghijkl', mac), false);
      assert.throws(() => hmacSigner([]), /at least one key/);
    });

    it('signs with the first key and verifies with every key', () => {
      const old = hmacSigner([Buffer.from('old')]);
      const rotating = hmacSigner([Buffer.from('new'), Buffer.from('old')]);
      const mac = old.sign('alpha', 'abcdefghijkl');
      assert.equal(rotating.verify('alpha', 'abcdefghijkl', mac), true);
      assert.equal(old.verify('alpha', 'abcdefghijkl', rotating.sign('alpha', 'abcdefghijkl')), false);
    });
  });

  describe('rotation through registry.previousTokenSecrets', () => {
    it('a token signed with the previous secret verifies while it is listed, and not otherwise', async () => {
      const store = new MemoryStore();
      const before = signerOf(config({ registry: { tokenSecret: SECRET_A } }), 'memory');
      const { token } = generateSignedToken('alpha', 1, before);
      const during = signerOf(config({ registry: { tokenSecret: SECRET_B, previousTokenSecrets: [SECRET_A] } }), 'memory');
      const after = signerOf(config({ registry: { tokenSecret: SECRET_B } }), 'memory');
      const auth = (signer: TokenSigner) => new Authenticator({ adminToken: ADMIN, store, signer });
      assert.equal(await toolOf(auth(before), token), 'alpha');
      assert.equal(await toolOf(auth(during), token), 'alpha');
      assert.equal(await toolOf(auth(after), token), null);
      // New tokens are signed with the new secret.
      const fresh = generateSignedToken('alpha', 1, during).token;
      assert.equal(await toolOf(auth(after), fresh), 'alpha');
      assert.equal(await toolOf(auth(before), fresh), null);
    });
  });

  describe('Authenticator', () => {
    const signer = hmacSigner([Buffer.from('test key')]);

    it('accepts a signed token that has no record in the store at all', async () => {
      const store = new MemoryStore();
      const { token, record } = generateSignedToken('alpha', 1, signer);
      assert.equal(await store.getToken(record.id), null);
      const r = await new Authenticator({ adminToken: ADMIN, store, signer }).authenticate(`Bearer ${token}`);
      assert.deepEqual(r, { ok: true, principal: { kind: 'tool', tool: 'alpha', tokenId: record.id } });
      assert.equal(record.hash, hashSecret(parseSignedToken(token)!.mac));
    });

    it('refuses a signed token whose tool, id or mac was changed, and any signed token without a key', async () => {
      const store = new MemoryStore();
      const { token } = generateSignedToken('alpha', 1, signer);
      const auth = new Authenticator({ adminToken: ADMIN, store, signer });
      assert.equal(await toolOf(auth, token), 'alpha');
      for (const part of ['tool', 'id', 'mac'] as const) {
        const forged = tampered(token, part);
        assert.notEqual(forged, token);
        assert.deepEqual(await auth.authenticate(`Bearer ${forged}`), { ok: false, reason: 'invalid' }, part);
      }
      assert.deepEqual(await new Authenticator({ adminToken: ADMIN, store }).authenticate(`Bearer ${token}`), { ok: false, reason: 'invalid' });
    });

    it('refuses a signed token at once when revoked through revoke()', async () => {
      const { token, record } = generateSignedToken('alpha', 1, signer);
      const auth = new Authenticator({ adminToken: ADMIN, store: new MemoryStore(), signer });
      assert.equal(await toolOf(auth, token), 'alpha');
      auth.revoke(record.id);
      assert.equal(await toolOf(auth, token), null);
      assert.ok(auth.revokedIds().has(record.id));
    });

    it('refuses a signed token once a revocation appears in the store, when its cached list is older than cacheMs', async () => {
      const store = new MemoryStore();
      const c = clock();
      const { token, record } = generateSignedToken('alpha', 1, signer);
      const auth = new Authenticator({ adminToken: ADMIN, store, signer, cacheMs: 1000, now: c.now });
      assert.equal(await toolOf(auth, token), 'alpha');
      // Another registry revoked it.
      await store.putRevocation({ id: record.id, tool: 'alpha', revokedAt: 1 });
      c.advance(999);
      assert.equal(await toolOf(auth, token), 'alpha', 'the list read 999 ms ago still stands');
      c.advance(1);
      assert.equal(await toolOf(auth, token), null);
      assert.ok(auth.revokedIds().has(record.id));
    });

    it('still accepts a stored (sbt_) token by its record, and refuses it once revoked', async () => {
      const store = new MemoryStore();
      const { token, record } = generateToken('beta', 1);
      await store.putToken(record);
      const auth = new Authenticator({ adminToken: ADMIN, store, signer, cacheMs: 0 });
      assert.equal(await toolOf(auth, token), 'beta');
      assert.equal(await toolOf(auth, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), null);
      assert.equal(await new Authenticator({ adminToken: ADMIN, store }).authenticate(`Bearer ${token}`).then((r) => r.ok), true);
      await store.revokeToken('beta', record.id);
      assert.equal(await toolOf(auth, token), null);
      // A record written back after a revocation this process saw does not make the token pass again.
      await store.putToken(record);
      auth.revoke(record.id);
      assert.equal(await toolOf(auth, token), null);
    });
  });

  describe('Authenticator on a Redis store that loses its state', () => {
    const redis = new RedisServer();
    before(async function () {
      this.timeout(15_000);
      await redis.start();
    });
    after(async () => {
      await redis.stop();
    });

    it('keeps refusing a revoked signed token after the store lost the revocation', async () => {
      const prefix = `signed:${randomUUID()}:`;
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000, logger: silentLogger() });
      const raw = new Redis(redis.url);
      try {
        const signer = hmacSigner([Buffer.from('test key')]);
        const c = clock();
        const { token, record } = generateSignedToken('alpha', 1, signer);
        const auth = new Authenticator({ adminToken: ADMIN, store, signer, cacheMs: 1000, now: c.now });
        assert.equal(await toolOf(auth, token), 'alpha');
        await store.putRevocation({ id: record.id, tool: 'alpha', revokedAt: 1 });
        c.advance(1000);
        assert.equal(await toolOf(auth, token), null);

        // The store loses everything under its prefix (a Redis restarted empty).
        const keys = await raw.keys(`${prefix}*`);
        assert.ok(keys.length > 0);
        await raw.del(...keys);
        assert.deepEqual(await store.listRevocations(), []);
        c.advance(5000);
        assert.equal(await toolOf(auth, token), null);
        // A process that never saw the revocation accepts the token: what refuses it above is memory.
        assert.equal(await toolOf(new Authenticator({ adminToken: ADMIN, store, signer }), token), 'alpha');
      } finally {
        raw.disconnect();
        await store.close();
      }
    });
  });

  describe('tokenSigner: where the key comes from', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'sb-keys-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('registry.tokenSecret first, whatever the store and the other sources', () => {
      const c = config({ adminToken: ADMIN, dataDir: dir, registry: { tokenSecret: SECRET_A } });
      const memory = tokenSigner(c, 'memory', silentLogger());
      const redis = tokenSigner(c, 'redis', silentLogger());
      assert.equal(memory.source, 'config');
      assert.equal(redis.source, 'config');
      const mac = memory.signer!.sign('alpha', 'abcdefghijkl');
      assert.equal(redis.signer!.verify('alpha', 'abcdefghijkl', mac), true);
      assert.throws(() => statSync(path.join(dir, 'token-secret')), { code: 'ENOENT' });
    });

    it('on the embedded store, a secret made in <dataDir>/token-secret (mode 0600) and reused by the next start', () => {
      const data = path.join(dir, 'nested', 'data');
      const c = config({ adminToken: ADMIN, dataDir: data });
      const first = tokenSigner(c, 'memory', silentLogger());
      assert.equal(first.source, 'data-dir');
      const file = path.join(data, 'token-secret');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const secret = readFileSync(file, 'utf8');
      assert.match(secret, /^[A-Za-z0-9_-]{43}\n$/);

      const second = tokenSigner(c, 'memory', silentLogger());
      assert.equal(second.source, 'data-dir');
      assert.equal(readFileSync(file, 'utf8'), secret);
      const mac = first.signer!.sign('alpha', 'abcdefghijkl');
      assert.equal(second.signer!.verify('alpha', 'abcdefghijkl', mac), true);
      // Not the admin token's key: the data directory's secret is what signs.
      assert.equal(tokenSigner(c, 'redis', silentLogger()).signer!.verify('alpha', 'abcdefghijkl', mac), false);
    });

    it('on Redis, a key derived from the admin token, the same in every registry sharing it', () => {
      const c = config({ adminToken: ADMIN, dataDir: dir });
      const one = tokenSigner(c, 'redis', silentLogger());
      const two = tokenSigner(config({ adminToken: ADMIN, dataDir: null }), 'redis', silentLogger());
      assert.equal(one.source, 'admin-token');
      assert.equal(two.source, 'admin-token');
      const mac = one.signer!.sign('alpha', 'abcdefghijkl');
      assert.equal(two.signer!.verify('alpha', 'abcdefghijkl', mac), true);
      const other = tokenSigner(config({ adminToken: `${ADMIN}-other` }), 'redis', silentLogger());
      assert.equal(other.signer!.verify('alpha', 'abcdefghijkl', mac), false);
      assert.throws(() => statSync(path.join(dir, 'token-secret')), { code: 'ENOENT' });
    });

    it('with none of them, no signer: Registry.issueToken answers stored sbt_ tokens', async () => {
      for (const kind of ['memory', 'redis'] as const) {
        const c = config({ adminToken: null, dataDir: null });
        const { signer, source } = tokenSigner(c, kind, silentLogger());
        assert.equal(source, 'none');
        assert.equal(signer, null);
      }
      const store = new MemoryStore();
      const c = config({ adminToken: null, dataDir: null });
      const unsigned = new Registry({ store, config: c, metrics: new Metrics(), logger: silentLogger(), signer: null });
      const issued = await unsigned.issueToken('alpha');
      assert.match(issued.token, /^sbt_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      assert.equal((await store.getToken(issued.id))?.tool, 'alpha');

      const signer = signerOf(config({ registry: { tokenSecret: SECRET_A } }), 'memory');
      const signed = await new Registry({ store, config: c, metrics: new Metrics(), logger: silentLogger(), signer }).issueToken('beta');
      assert.match(signed.token, new RegExp(`^sbs_beta_${signed.id}_[A-Za-z0-9_-]{43}$`));
      assert.equal((await store.getToken(signed.id))?.hash, hashSecret(parseSignedToken(signed.token)!.mac));
    });
  });
});
