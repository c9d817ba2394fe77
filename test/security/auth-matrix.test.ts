import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Store } from '../../src/registry/store';
import { freePortRange } from '../launcher/helpers';
import { startBackend, storeKinds } from '../registry/harness';
import { ADMIN_TOKEN, Client, appTarget, documentedRoutes, fillPath, harnessTarget, issuePrincipals, watchStore, type Principals, type StoreWatch, type Target } from './support';

/**
 * Every operation of docs/openapi.json against every kind of caller. The routes come from the document,
 * so a route added there without a line in EXPECTATIONS fails here until someone decides who may use it.
 */

type Who = 'none' | 'malformed' | 'emptyBearer' | 'unknown' | 'revoked' | 'queryOnly' | 'other' | 'own' | 'admin';
const WHO: Who[] = ['none', 'malformed', 'emptyBearer', 'unknown', 'revoked', 'queryOnly', 'other', 'own', 'admin'];

/** Who may use a route: the admin only; the admin and the tool it concerns (`alpha`); everyone. */
type Access = 'admin' | 'tool' | 'public';

interface Expectation {
  access: Access;
  /** The status an allowed caller gets (several: it depends on configuration the matrix does not fix). */
  ok: number | number[];
  /** State the request needs; answers path parameters (besides tool=alpha, id=a1, host=127.0.0.1). */
  prepare?: (c: Client) => Promise<Record<string, string>>;
  /** The JSON body (else the document's example). */
  body?: () => unknown;
}

/**
 * A live server that tool alpha gets an assignment for (through a heartbeat: POST /v1/ports never hands out
 * a port something listens on), so the registry's probe of a discovery report reaches it.
 */
let listenerPort = 0;
/** The port range: one free port, for POST /v1/ports. */
let freeRange = { min: 0, max: 0 };
const backendUrl = () => `http://127.0.0.1:${listenerPort}`;

async function ok(p: Promise<{ status: number; text: string; body: any }>, want: number): Promise<any> {
  const r = await p;
  assert.equal(r.status, want, r.text);
  return r.body;
}

const EXPECTATIONS: Record<string, Expectation> = {
  'PUT /v1/tools/{tool}/backends/{id}': { access: 'tool', ok: 200, body: () => ({ url: backendUrl() }) },
  'DELETE /v1/tools/{tool}/backends/{id}': {
    access: 'tool',
    ok: 204,
    prepare: async (c) => {
      await ok(c.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backendUrl() } }), 200);
      return {};
    },
  },
  'GET /v1/tools': { access: 'admin', ok: 200 },
  'GET /v1/tools/{tool}': {
    access: 'tool',
    ok: 200,
    prepare: async (c) => {
      await ok(c.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backendUrl() } }), 200);
      return {};
    },
  },
  'GET /v1/ports': { access: 'admin', ok: 200 },
  'POST /v1/ports': { access: 'tool', ok: 200, body: () => ({ tool: 'alpha', host: '127.0.0.1' }) },
  'DELETE /v1/ports/{host}/{port}': {
    access: 'tool',
    ok: 204,
    prepare: async (c) => {
      const a = await ok(c.call('POST', '/v1/ports', { json: { tool: 'alpha', host: '127.0.0.1' } }), 200);
      return { port: String(a.port) };
    },
  },
  'POST /v1/tools/{tool}/tokens': { access: 'admin', ok: 201 },
  // 201 where discovery is on (the registry's own probe reaches the listener on the assigned port); 409
  // discovery_disabled where the composition runs without it.
  'POST /v1/tools/{tool}/discoveries': {
    access: 'tool',
    ok: [201, 409],
    prepare: async (c) => {
      // A registration creates alpha's assignment on the listener; once it is gone, only discovery routes it.
      await ok(c.call('PUT', '/v1/tools/alpha/backends/listener-owner', { json: { url: backendUrl() } }), 200);
      await c.call('DELETE', '/v1/tools/alpha/backends/listener-owner');
      return {};
    },
    body: () => ({ host: '127.0.0.1', port: listenerPort }),
  },
  'DELETE /v1/tools/{tool}/tokens/{tokenId}': {
    access: 'admin',
    ok: 204,
    prepare: async (c) => {
      const t = await ok(c.call('POST', '/v1/tools/alpha/tokens'), 201);
      return { tokenId: t.id };
    },
  },
};

function expected(e: Expectation, who: Who): number[] {
  const okList = Array.isArray(e.ok) ? e.ok : [e.ok];
  if (e.access === 'public') return okList;
  switch (who) {
    case 'none':
    case 'malformed':
    case 'emptyBearer':
    case 'unknown':
    case 'revoked':
    case 'queryOnly':
      return [401];
    case 'other':
      return [403];
    case 'own':
      return e.access === 'tool' ? okList : [403];
    case 'admin':
      return okList;
  }
}

/** The Authorization header (null: none) and a query string for each kind of caller. */
function credentials(who: Who, p: Principals): { auth: string | null; query: string } {
  switch (who) {
    case 'none':
      return { auth: null, query: '' };
    case 'malformed':
      return { auth: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`, query: '' };
    case 'emptyBearer':
      return { auth: 'Bearer ', query: '' };
    case 'unknown':
      return { auth: `Bearer sbt_${'a'.repeat(12)}_${crypto.randomBytes(32).toString('base64url')}`, query: '' };
    case 'revoked':
      return { auth: `Bearer ${p.revoked}`, query: '' };
    case 'queryOnly':
      // A token in the URL is never a credential (it would end up in every log on the way).
      return { auth: null, query: `?access_token=${ADMIN_TOKEN}&token=${ADMIN_TOKEN}` };
    case 'other':
      return { auth: `Bearer ${p.other}`, query: '' };
    case 'own':
      return { auth: `Bearer ${p.own}`, query: '' };
    case 'admin':
      return { auth: `Bearer ${ADMIN_TOKEN}`, query: '' };
  }
}

const ROUTES = documentedRoutes();

describe('security: auth matrix covers docs/openapi.json', () => {
  it('every documented operation has an expectation, and every expectation a documented operation', () => {
    assert.ok(ROUTES.length >= 9, `only ${ROUTES.length} operations read from docs/openapi.json`);
    const missing = ROUTES.filter((r) => !EXPECTATIONS[r.key]).map((r) => r.key);
    assert.deepEqual(missing, [], `routes without an auth expectation: add them to EXPECTATIONS in ${__filename}`);
    const stale = Object.keys(EXPECTATIONS).filter((k) => !ROUTES.some((r) => r.key === k));
    assert.deepEqual(stale, [], 'expectations for routes the document no longer lists');
  });

  it('public routes in the matrix are exactly those the document marks `security: []`', () => {
    for (const r of ROUTES) {
      const e = EXPECTATIONS[r.key];
      if (e) assert.equal(e.access === 'public', r.public, r.key);
    }
  });
});

function portRange(): Record<string, unknown> {
  return { ports: freeRange };
}

let listener: Awaited<ReturnType<typeof startBackend>> | null = null;
before(async () => {
  listener = await startBackend();
  listenerPort = listener.port;
  freeRange = await freePortRange(1);
});
after(async () => {
  await listener?.close();
});

type Made = { target: Target; store: Store; watch: StoreWatch };
type Maker = { name: string; before(): Promise<void>; after(): Promise<void>; target(): Promise<Made> };

function makers(): Maker[] {
  const out: Maker[] = [];
  for (const kind of storeKinds()) {
    out.push({
      name: `harness, ${kind.name} store`,
      before: () => kind.before(),
      after: () => kind.after(),
      async target() {
        const store = await kind.create();
        const watch = watchStore(store);
        return { target: await harnessTarget(watch.store, portRange()), store, watch };
      },
    });
  }
  const memory = storeKinds()[0];
  out.push({
    name: 'startSwitchboard (production composition), memory store',
    before: async () => {},
    after: async () => {},
    async target() {
      const store = await memory.create();
      const watch = watchStore(store);
      return { target: await appTarget(watch.store, { overrides: portRange() }), store, watch };
    },
  });
  return out;
}

for (const maker of makers()) {
  describe(`security: auth matrix (${maker.name})`, function () {
    this.timeout(30_000);
    let target: Target;
    let store: Store;
    let watch: StoreWatch;
    let client: Client;
    let principals: Principals;

    before(async function () {
      this.timeout(20_000);
      await maker.before();
    });
    after(() => maker.after());

    beforeEach(async () => {
      ({ target, store, watch } = await maker.target());
      client = new Client(target.base, 2);
      principals = await issuePrincipals(client);
    });

    afterEach(async () => {
      client.close();
      await target.close();
      await store.close();
    });

    for (const route of ROUTES) {
      const e = EXPECTATIONS[route.key];
      if (!e) continue; // reported by the coverage test above
      describe(route.key, () => {
        for (const who of WHO) {
          const want = expected(e, who);
          it(`${who} -> ${want.join(' or ')}`, async () => {
            const vars = { tool: 'alpha', id: 'a1', host: '127.0.0.1', ...(e.prepare ? await e.prepare(client) : {}) };
            const { auth, query } = credentials(who, principals);
            const headers: Record<string, string> = {};
            if (auth !== null) headers.authorization = auth;
            let body: string | undefined;
            if (route.hasBody) {
              const json = e.body ? e.body() : route.example;
              assert.ok(json !== undefined, `${route.key} takes a body: give one in EXPECTATIONS`);
              body = JSON.stringify(json);
              headers['content-type'] = 'application/json';
            }
            const r = await client.send({ method: route.method, path: fillPath(route.path, vars) + query, headers, body });
            assert.ok(want.includes(r.status), `${who} ${route.key}: want ${want.join(' or ')}, got ${r.status} ${r.text}`);
            if (r.status === 409 && route.key === 'POST /v1/tools/{tool}/discoveries') assert.equal(r.body?.error?.code, 'discovery_disabled');
            if (r.status === 401) {
              assert.match(String(r.headers['www-authenticate'] ?? ''), /^Bearer realm="switchboard"/);
              assert.match(r.body?.error?.code ?? '', /^(missing_token|invalid_token)$/);
            }
            if (r.status === 403) assert.equal(r.body?.error?.code, 'forbidden');
          });
        }
      });
    }

    it('a refused caller changes nothing: every route, every refused principal, one state read', async () => {
      const varsOf = new Map<string, Record<string, string>>();
      for (const route of ROUTES) {
        const e = EXPECTATIONS[route.key];
        if (e?.prepare) varsOf.set(route.key, await e.prepare(client));
      }
      const before = await watch.state();
      for (const route of ROUTES) {
        const e = EXPECTATIONS[route.key];
        if (!e || e.access === 'public') continue;
        const vars = { tool: 'alpha', id: 'a1', host: '127.0.0.1', ...varsOf.get(route.key) };
        for (const who of WHO) {
          if (expected(e, who)[0] < 400) continue;
          const { auth, query } = credentials(who, principals);
          const headers: Record<string, string> = {};
          if (auth !== null) headers.authorization = auth;
          let body: string | undefined;
          if (route.hasBody) {
            body = JSON.stringify(e.body ? e.body() : route.example);
            headers['content-type'] = 'application/json';
          }
          const r = await client.send({ method: route.method, path: fillPath(route.path, vars) + query, headers, body });
          assert.ok(r.status === 401 || r.status === 403, `${who} ${route.key}: ${r.status} ${r.text}`);
        }
      }
      assert.equal(await watch.state(), before);
    });
  });
}
