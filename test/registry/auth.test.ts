import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/logger';
import type { Store } from '../../src/registry/store';
import { resolveAdminToken } from '../../src/registry/tokens';
import { ADMIN_TOKEN, startApi, startBackend, storeKinds, type Api } from './harness';

type Who = 'none' | 'malformed' | 'unknown' | 'revoked' | 'other' | 'own' | 'admin';
const WHO: Who[] = ['none', 'malformed', 'unknown', 'revoked', 'other', 'own', 'admin'];

interface Tokens {
  own: string;
  other: string;
  revoked: string;
}

/** One route of the API: how to prepare state for it, the request, and who may use it. */
interface RouteCase {
  route: string;
  prepare?: (api: Api) => Promise<Record<string, string>>;
  request: (vars: Record<string, string>) => { method: string; path: string; json?: unknown };
  /** Status for the tool's own token and for the admin; every other principal gets 401 or 403. */
  own: number;
  admin: number;
}

let backendUrl = '';

const ROUTES: RouteCase[] = [
  {
    route: 'PUT /v1/tools/{tool}/backends/{id}',
    request: () => ({ method: 'PUT', path: '/v1/tools/alpha/backends/a1', json: { url: backendUrl } }),
    own: 200,
    admin: 200,
  },
  {
    route: 'DELETE /v1/tools/{tool}/backends/{id}',
    prepare: async (api) => {
      assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backendUrl } })).status, 200);
      return {};
    },
    request: () => ({ method: 'DELETE', path: '/v1/tools/alpha/backends/a1' }),
    own: 204,
    admin: 204,
  },
  {
    route: 'GET /v1/tools',
    request: () => ({ method: 'GET', path: '/v1/tools' }),
    own: 403,
    admin: 200,
  },
  {
    route: 'GET /v1/tools/{tool}',
    prepare: async (api) => {
      assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backendUrl } })).status, 200);
      return {};
    },
    request: () => ({ method: 'GET', path: '/v1/tools/alpha' }),
    own: 200,
    admin: 200,
  },
  {
    route: 'GET /v1/ports',
    request: () => ({ method: 'GET', path: '/v1/ports' }),
    own: 403,
    admin: 200,
  },
  {
    route: 'POST /v1/ports',
    request: () => ({ method: 'POST', path: '/v1/ports', json: { tool: 'alpha', host: '127.0.0.1' } }),
    own: 200,
    admin: 200,
  },
  {
    route: 'DELETE /v1/ports/{host}/{port}',
    prepare: async (api) => {
      const r = await api.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } });
      assert.equal(r.status, 200);
      return { port: String(r.body.port) };
    },
    request: (v) => ({ method: 'DELETE', path: `/v1/ports/127.0.0.1/${v.port}` }),
    own: 204,
    admin: 204,
  },
  {
    route: 'POST /v1/tools/{tool}/tokens',
    request: () => ({ method: 'POST', path: '/v1/tools/alpha/tokens' }),
    own: 403,
    admin: 201,
  },
  {
    route: 'DELETE /v1/tools/{tool}/tokens/{tokenId}',
    prepare: async (api) => {
      const r = await api.call('POST', '/v1/tools/alpha/tokens');
      assert.equal(r.status, 201);
      return { tokenId: r.body.id };
    },
    request: (v) => ({ method: 'DELETE', path: `/v1/tools/alpha/tokens/${v.tokenId}` }),
    own: 403,
    admin: 204,
  },
];

function expected(rc: RouteCase, who: Who): number {
  switch (who) {
    case 'none':
    case 'malformed':
    case 'unknown':
    case 'revoked':
      return 401;
    case 'other':
      return 403;
    case 'own':
      return rc.own;
    case 'admin':
      return rc.admin;
  }
}

function header(who: Who, tokens: Tokens): string | null {
  switch (who) {
    case 'none':
      return null;
    case 'malformed':
      return 'Basic YWRtaW46YWRtaW4=';
    case 'unknown':
      return `Bearer sbt_${'a'.repeat(12)}_${crypto.randomBytes(32).toString('base64url')}`;
    case 'revoked':
      return `Bearer ${tokens.revoked}`;
    case 'other':
      return `Bearer ${tokens.other}`;
    case 'own':
      return `Bearer ${tokens.own}`;
    case 'admin':
      return `Bearer ${ADMIN_TOKEN}`;
  }
}

for (const kind of storeKinds()) {
  describe(`registration API auth (${kind.name} store)`, () => {
    let store: Store;
    let api: Api;
    let tokens: Tokens;
    let backend: Awaited<ReturnType<typeof startBackend>>;

    before(async function () {
      this.timeout(15_000);
      await kind.before();
      backend = await startBackend();
      backendUrl = backend.url;
    });

    after(async () => {
      await backend?.close();
      await kind.after();
    });

    beforeEach(async () => {
      store = await kind.create();
      api = await startApi({ store });
      const issue = async (tool: string) => {
        const r = await api.call('POST', `/v1/tools/${tool}/tokens`);
        assert.equal(r.status, 201, r.text);
        return r.body as { id: string; token: string };
      };
      const revoked = await issue('alpha');
      assert.equal((await api.call('DELETE', `/v1/tools/alpha/tokens/${revoked.id}`)).status, 204);
      tokens = { own: (await issue('alpha')).token, other: (await issue('beta')).token, revoked: revoked.token };
    });

    afterEach(async () => {
      await api.close();
      await store.close();
    });

    for (const rc of ROUTES) {
      describe(rc.route, () => {
        for (const who of WHO) {
          const want = expected(rc, who);
          it(`${who} -> ${want}`, async () => {
            const vars = rc.prepare ? await rc.prepare(api) : {};
            const req = rc.request(vars);
            const auth = header(who, tokens);
            const r = await api.call(req.method, req.path, {
              json: req.json,
              token: null,
              headers: auth === null ? {} : { authorization: auth },
            });
            assert.equal(r.status, want, r.text);
            if (want === 401) {
              assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/);
              assert.match(r.body.error.code, /^(missing_token|invalid_token)$/);
            }
            if (want === 403) assert.equal(r.body.error.code, 'forbidden');
          });
        }
      });
    }

    it('a tool token may not release a port another tool holds, nor learn more than 403', async () => {
      const held = await api.call('POST', '/v1/ports', { json: { tool: 'beta', host: '127.0.0.1' } });
      assert.equal(held.status, 200);
      const r = await api.call('DELETE', `/v1/ports/127.0.0.1/${held.body.port}`, { token: tokens.own });
      assert.equal(r.status, 403);
      assert.equal((await store.listAssignments()).length, 1);
    });

    it('a tool token may not allocate for another tool', async () => {
      const r = await api.call('POST', '/v1/ports', { token: tokens.own, json: { tool: 'beta', host: '127.0.0.1' } });
      assert.equal(r.status, 403);
      assert.deepEqual(await store.listAssignments(), []);
    });

    it('a token with the right id but a wrong secret is refused', async () => {
      const id = tokens.own.slice(4, 16);
      const forged = `sbt_${id}_${crypto.randomBytes(32).toString('base64url')}`;
      const r = await api.call('GET', '/v1/tools/alpha', { token: forged });
      assert.equal(r.status, 401);
    });

    it('revocation takes effect at once in the process that revoked', async () => {
      const issued = await api.call('POST', '/v1/tools/gamma/tokens');
      const put = () => api.call('PUT', '/v1/tools/gamma/backends/g1', { token: issued.body.token, json: { url: backend.url } });
      // beta holds nothing on this port yet; gamma registers, then loses its token.
      assert.equal((await put()).status, 200);
      assert.equal((await api.call('DELETE', `/v1/tools/gamma/tokens/${issued.body.id}`)).status, 204);
      assert.equal((await put()).status, 401);
      assert.equal((await api.call('DELETE', `/v1/tools/gamma/tokens/${issued.body.id}`)).status, 404);
    });

    it("revoking a token under another tool's name answers 404 and leaves the token working", async () => {
      const issued = await api.call('POST', '/v1/tools/gamma/tokens');
      const put = () => api.call('PUT', '/v1/tools/gamma/backends/g1', { token: issued.body.token, json: { url: backend.url } });
      const wrong = await api.call('DELETE', `/v1/tools/delta/tokens/${issued.body.id}`);
      assert.equal(wrong.status, 404, wrong.text);
      assert.equal(wrong.body.error.code, 'no_such_token');
      assert.equal((await put()).status, 200);
      assert.ok(!(await store.listRevocations()).some((r) => r.id === issued.body.id));
      assert.equal((await api.call('DELETE', `/v1/tools/gamma/tokens/${issued.body.id}`)).status, 204);
      assert.equal((await put()).status, 401);
    });

    it('stores only the hash of a token secret', async () => {
      const r = await api.call('POST', '/v1/tools/alpha/tokens');
      assert.equal(r.status, 201);
      const token: string = r.body.token;
      assert.match(token, /^sbt_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      assert.equal(token.slice(4, 16), r.body.id);
      const secret = token.slice(17);
      const record = await store.getToken(r.body.id);
      assert.ok(record);
      const stored = JSON.stringify(record);
      assert.equal(stored.includes(secret), false);
      assert.equal(stored.includes(token), false);
      assert.equal(record.tool, 'alpha');
      assert.equal(record.hash, crypto.createHash('sha256').update(secret).digest('hex'));
    });
  });
}

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
