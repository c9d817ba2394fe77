import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Store } from '../../src/registry/store';
import { freePortRange } from '../launcher/helpers';
import { storeKinds, type StoreKind } from '../registry/harness';
import { ADMIN_TOKEN, Client, appTarget, documentedRoutes, fillPath, harnessTarget, issuePrincipals, watchStore, type DocRoute, type Principals, type RawRequest, type StoreWatch, type Target } from './support';
import { startBackend } from '../support/backend';

/**
 * Every operation of docs/openapi.json against every kind of caller, on both stores, through the registry
 * harness (stored `sbt_` tokens, heartbeats taken by the fast path), through it with express alone, and
 * through the production composition (signed `sbs_` tokens). The routes come from the document, so a route
 * added there without a line in EXPECTATIONS fails here until someone decides who may use it.
 */

type Who = 'none' | 'malformed' | 'emptyBearer' | 'unknown' | 'forged' | 'revoked' | 'queryOnly' | 'other' | 'own' | 'admin';
const WHO: Who[] = ['none', 'malformed', 'emptyBearer', 'unknown', 'forged', 'revoked', 'queryOnly', 'other', 'own', 'admin'];

/** The heartbeat: the one route the fast path in front of express takes. */
const HEARTBEAT = 'PUT /v1/tools/{tool}/backends/{id}';

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
/** A URL on the port range, which a tool token may register (the heartbeat assigns it). */
const rangeUrl = () => `http://127.0.0.1:${freeRange.min}`;

async function ok(p: Promise<{ status: number; text: string; body: any }>, want: number): Promise<any> {
  const r = await p;
  assert.equal(r.status, want, r.text);
  return r.body;
}

/** Alpha's assignment on the listener, made by an admin registration (a tool token registers only ports its tool holds, or ports of the range). */
async function assignListener(c: Client): Promise<Record<string, string>> {
  await ok(c.call('PUT', '/v1/tools/alpha/backends/listener-owner', { json: { url: backendUrl() } }), 200);
  await ok(c.call('DELETE', '/v1/tools/alpha/backends/listener-owner'), 204);
  return {};
}

/** Ban a1, put by the admin. */
async function banA1(c: Client): Promise<Record<string, string>> {
  await ok(c.call('PUT', '/v1/blocks/a1', { json: { cidr: '198.51.100.0/24' } }), 200);
  return {};
}

/** Alpha's policy, put by the admin. */
async function alphaPolicy(c: Client): Promise<Record<string, string>> {
  await ok(c.call('PUT', '/v1/tools/alpha/policy', { json: { maxConcurrent: 3 } }), 200);
  return {};
}

/** The outage switch on, by the admin. */
async function maintenanceOn(c: Client): Promise<Record<string, string>> {
  await ok(c.call('PUT', '/v1/maintenance', { json: { message: 'planned outage' } }), 200);
  return {};
}

const EXPECTATIONS: Record<string, Expectation> = {
  'PUT /v1/tools/{tool}/backends/{id}': { access: 'tool', ok: 200, prepare: assignListener, body: () => ({ url: backendUrl() }) },
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
    // A registration creates alpha's assignment on the listener; once it is gone, only discovery routes it.
    prepare: assignListener,
    body: () => ({ host: '127.0.0.1', port: listenerPort }),
  },
  'GET /v1/blocks': { access: 'admin', ok: 200 },
  'PUT /v1/blocks/{id}': { access: 'admin', ok: 200, body: () => ({ cidr: '203.0.113.0/24' }) },
  'GET /v1/blocks/{id}': { access: 'admin', ok: 200, prepare: banA1 },
  'DELETE /v1/blocks/{id}': { access: 'admin', ok: 204, prepare: banA1 },
  'PUT /v1/tools/{tool}/policy': { access: 'tool', ok: 200, body: () => ({ maxConcurrent: 5 }) },
  'GET /v1/tools/{tool}/policy': { access: 'tool', ok: 200, prepare: alphaPolicy },
  'DELETE /v1/tools/{tool}/policy': { access: 'tool', ok: 204, prepare: alphaPolicy },
  'PUT /v1/maintenance': { access: 'admin', ok: 200, body: () => ({ message: 'planned outage' }) },
  'GET /v1/maintenance': { access: 'admin', ok: 200, prepare: maintenanceOn },
  'DELETE /v1/maintenance': { access: 'admin', ok: 204, prepare: maintenanceOn },
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
    case 'forged':
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
    case 'forged':
      // The own token's tool and id with another secret (sbt_) or mac (sbs_): both forms end in 43 characters.
      return { auth: `Bearer ${p.own.slice(0, -43)}${crypto.randomBytes(32).toString('base64url')}`, query: '' };
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
  listener = await startBackend('ok');
  listenerPort = listener.port;
  freeRange = await freePortRange(1);
});
after(async () => {
  await listener?.close();
});

type Made = { target: Target; store: Store; watch: StoreWatch };

/** How a composition issues tool tokens: the harness has no signing key (stored form), startSwitchboard signs with one derived from the admin token. */
type Form = 'stored' | 'signed';

interface Maker {
  name: string;
  form: Form;
  /** Does the heartbeat fast path answer the heartbeat route (true), express (false), or not known (null)? */
  fastPath: boolean | null;
  /** The routes this composition is run over (all documented ones unless given). */
  routes?: string[];
  before(): Promise<void>;
  after(): Promise<void>;
  target(): Promise<Made>;
}

/** A composition of the API on one kind of store, fresh per test, with the store's writes watched. */
function maker(kind: StoreKind, m: Pick<Maker, 'name' | 'form' | 'fastPath' | 'routes'>, compose: (store: Store) => Promise<Target>): Maker {
  return {
    ...m,
    before: () => kind.before(),
    after: () => kind.after(),
    async target() {
      const store = await kind.create();
      const watch = watchStore(store);
      return { target: await compose(watch.store), store, watch };
    },
  };
}

/**
 * Refused calls from loopback a minute before 429s: the matrix's "refused caller" case alone makes 8 a
 * route, more than the default 100 once the routes number past a dozen.
 */
const MATRIX_FAILURES_PER_MINUTE = 10_000;

function makers(): Maker[] {
  const harness = (s: Store) => harnessTarget(s, portRange(), { authFailuresPerMinute: MATRIX_FAILURES_PER_MINUTE });
  const expressOnly = (s: Store) => harnessTarget(s, portRange(), { fastPath: false, authFailuresPerMinute: MATRIX_FAILURES_PER_MINUTE });
  const app = (s: Store) => appTarget(s, { overrides: { ...portRange(), control: { authFailuresPerMinute: MATRIX_FAILURES_PER_MINUTE } } });
  return [
    ...storeKinds().map((kind) => maker(kind, { name: `harness, ${kind.name} store`, form: 'stored', fastPath: true }, harness)),
    maker(storeKinds()[0], { name: 'harness without the heartbeat fast path (express answers), memory store', form: 'stored', fastPath: false, routes: [HEARTBEAT] }, expressOnly),
    ...storeKinds().map((kind) => maker(kind, { name: `startSwitchboard (production composition), ${kind.name} store`, form: 'signed', fastPath: null }, app)),
  ];
}

/** The request a caller makes on a route: its path parameters, credentials and the route's body. */
function request(route: DocRoute, e: Expectation, who: Who, p: Principals, vars: Record<string, string>): RawRequest {
  const { auth, query } = credentials(who, p);
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined;
  if (route.hasBody) {
    const json = e.body ? e.body() : route.example;
    assert.ok(json !== undefined, `${route.key} takes a body: give one in EXPECTATIONS`);
    body = JSON.stringify(json);
    headers['content-type'] = 'application/json';
  }
  return { method: route.method, path: fillPath(route.path, { tool: 'alpha', id: 'a1', host: '127.0.0.1', ...vars }) + query, headers, body };
}

/** A tool token as the composition issues it, and the part of it that is secret. */
const TOKEN_FORM: Record<Form, (id: string) => RegExp> = {
  stored: (id) => new RegExp(`^sbt_${id}_([A-Za-z0-9_-]{43})$`),
  signed: (id) => new RegExp(`^sbs_alpha_${id}_([A-Za-z0-9_-]{43})$`),
};

for (const maker of makers()) {
  const routes = ROUTES.filter((r) => !maker.routes || maker.routes.includes(r.key));
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

    for (const route of routes) {
      const e = EXPECTATIONS[route.key];
      if (!e) continue; // reported by the coverage test above
      describe(route.key, () => {
        for (const who of WHO) {
          const want = expected(e, who);
          it(`${who} -> ${want.join(' or ')}`, async () => {
            const vars = e.prepare ? await e.prepare(client) : {};
            const fastBefore = target.fastPathAnswered();
            const r = await client.send(request(route, e, who, principals, vars));
            assert.ok(want.includes(r.status), `${who} ${route.key}: want ${want.join(' or ')}, got ${r.status} ${r.text}`);
            if (r.status === 409 && route.key === 'POST /v1/tools/{tool}/discoveries') assert.equal(r.body?.error?.code, 'discovery_disabled');
            if (r.status === 401) {
              assert.match(String(r.headers['www-authenticate'] ?? ''), /^Bearer realm="switchboard"/);
              assert.match(r.body?.error?.code ?? '', /^(missing_token|invalid_token)$/);
            }
            if (r.status === 403) assert.equal(r.body?.error?.code, 'forbidden');
            // Which layer checked the credentials: the fast path takes heartbeats and nothing else.
            const fastAfter = target.fastPathAnswered();
            if (maker.fastPath === true) assert.equal(fastAfter! - fastBefore!, route.key === HEARTBEAT ? 1 : 0, 'requests the fast path answered');
            if (maker.fastPath === false) assert.equal(fastAfter, null, 'no fast path in front of express');
          });
        }
      });
    }

    it('a refused caller changes nothing: every route, every refused principal, one state read', async () => {
      const varsOf = new Map<string, Record<string, string>>();
      for (const route of routes) {
        const e = EXPECTATIONS[route.key];
        if (e?.prepare) varsOf.set(route.key, await e.prepare(client));
      }
      const before = await watch.state();
      for (const route of routes) {
        const e = EXPECTATIONS[route.key];
        if (!e || e.access === 'public') continue;
        for (const who of WHO) {
          if (expected(e, who)[0] < 400) continue;
          const r = await client.send(request(route, e, who, principals, varsOf.get(route.key) ?? {}));
          assert.ok(r.status === 401 || r.status === 403, `${who} ${route.key}: ${r.status} ${r.text}`);
        }
      }
      assert.equal(await watch.state(), before);
    });

    it(`issues tool tokens in the ${maker.form} form and stores only the hash of the secret part`, async () => {
      const issued = await ok(client.call('POST', '/v1/tools/alpha/tokens'), 201);
      const token: string = issued.token;
      const m = TOKEN_FORM[maker.form](issued.id).exec(token);
      assert.ok(m, `${token} is not a ${maker.form} token of alpha with id ${issued.id}`);
      assert.match(issued.id, /^[a-z2-7]{12}$/);
      const secret = m[1];
      const record = await store.getToken(issued.id);
      assert.ok(record);
      const stored = JSON.stringify(record);
      assert.equal(stored.includes(secret), false);
      assert.equal(stored.includes(token), false);
      assert.equal(record.tool, 'alpha');
      assert.equal(record.hash, crypto.createHash('sha256').update(secret).digest('hex'));
    });

    it('revocation takes effect at once in the process that revoked; a second revocation answers 404', async () => {
      const issued = await ok(client.call('POST', '/v1/tools/gamma/tokens'), 201);
      const put = () => client.call('PUT', '/v1/tools/gamma/backends/g1', { token: issued.token, json: { url: rangeUrl() } });
      // Used first, so a cache of tokens seen valid would be the one to answer after the revocation.
      assert.equal((await put()).status, 200);
      await ok(client.call('DELETE', `/v1/tools/gamma/tokens/${issued.id}`), 204);
      assert.equal((await put()).status, 401);
      assert.equal((await client.call('DELETE', `/v1/tools/gamma/tokens/${issued.id}`)).status, 404);
    });

    it("revoking a token under another tool's name answers 404 and leaves the token working", async () => {
      const issued = await ok(client.call('POST', '/v1/tools/gamma/tokens'), 201);
      const put = () => client.call('PUT', '/v1/tools/gamma/backends/g1', { token: issued.token, json: { url: rangeUrl() } });
      const wrong = await client.call('DELETE', `/v1/tools/delta/tokens/${issued.id}`);
      assert.equal(wrong.status, 404, wrong.text);
      assert.equal(wrong.body.error.code, 'no_such_token');
      assert.equal((await put()).status, 200);
      assert.ok(!(await store.listRevocations()).some((r) => r.id === issued.id));
      await ok(client.call('DELETE', `/v1/tools/gamma/tokens/${issued.id}`), 204);
      assert.equal((await put()).status, 401);
    });
  });
}
