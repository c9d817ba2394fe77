import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore } from '../../src/registry/memory-store';
import type { Store } from '../../src/registry/store';
import { storeKinds } from '../registry/harness';
import {
  authArb,
  contentTypeArb,
  encodedBodyArb,
  extraHeadersArb,
  heartbeatPathArb,
  methodArb,
  pathArb,
  type AuthCase,
  type FuzzRequest,
} from './arbitraries';
import { violations } from './fuzz-oracle';
import { Client, appTarget, harnessTarget, issuePrincipals, watchStore, type Principals, type StoreWatch, type Target } from './support';

/**
 * Property-based fuzzing of the registration API (fast-check). Seeded: the seed is printed, and
 * SWITCHBOARD_FUZZ_SEED replays another run. Most cases run in-process against the embedded store (a
 * state read costs microseconds); a smaller run goes to a real Redis.
 *
 * Properties, for every case: never a 5xx while the store is up; a rejected request (and any GET, HEAD or
 * OPTIONS) changes nothing stored; no 2xx for a caller who may not act; refusals carry the JSON error
 * body; Object.prototype stays clean; the server is alive afterwards.
 */

const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? 20261126);
const RUNS = { bodies: 4000, paths: 2500, headers: 2500, app: 1500, redis: 800, bursts: 150 };
const BURST = 8;
let cases = 0;
let requests = 0;
const statuses = new Map<number, number>();

interface Ctx {
  target: Target;
  store: Store;
  watch: StoreWatch;
  client: Client;
  principals: Principals;
}

async function open(store: Store, kind: 'harness' | 'app'): Promise<Ctx> {
  const watch = watchStore(store);
  // A wide port range: exhaustion (a legitimate 503) is not what these properties are about.
  const overrides = { ports: { min: 47000, max: 47999 } };
  const target = kind === 'harness' ? await harnessTarget(watch.store, overrides) : await appTarget(watch.store, { overrides });
  const client = new Client(target.base, BURST);
  const principals = await issuePrincipals(client);
  return { target, store, watch, client, principals };
}

async function close(ctx: Ctx | undefined): Promise<void> {
  if (!ctx) return;
  ctx.client.close();
  await ctx.target.close();
  await ctx.store.close();
}

function headersOf(req: FuzzRequest, p: Principals): Record<string, string> {
  const h: Record<string, string> = { ...req.headers };
  const auth = req.auth.header(p);
  if (auth !== null) h.authorization = auth;
  return h;
}

function count(status: number): void {
  requests++;
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
}

/** Sends one request and checks every property; throws with the violations for fast-check to shrink. */
async function exercise(ctx: Ctx, req: FuzzRequest, stateCheck = true): Promise<void> {
  const stateBefore = stateCheck ? await ctx.watch.state() : null;
  const assignmentsBefore = await ctx.store.listAssignments();
  const reply = await ctx.client.send({ method: req.method, path: req.path + req.auth.query(ctx.principals), headers: headersOf(req, ctx.principals), body: req.body });
  count(reply.status);
  const stateAfter = stateCheck ? await ctx.watch.state() : null;
  const found = violations({ req, reply, stateBefore, stateAfter, assignmentsBefore });
  if (found.length) throw new Error(`${req.method} ${req.path} (${req.auth.label}): ${found.join('; ')}`);
}

function request(method: string, path: string, auth: AuthCase, contentType: string | null, body: Buffer | undefined, extra: Record<string, string> = {}, encoding: string | null = null): FuzzRequest {
  const headers: Record<string, string> = { ...extra };
  if (contentType !== null && body !== undefined) headers['content-type'] = contentType;
  if (encoding !== null) headers['content-encoding'] = encoding;
  return { method, path, headers, body, auth };
}

// Heartbeats, mostly from callers that may send them, with every kind of body and content type.
const bodyCase = fc
  .tuple(
    heartbeatPathArb,
    fc.oneof({ weight: 5, arbitrary: authArb.filter((a) => a.principal.kind !== 'none') }, authArb),
    contentTypeArb,
    encodedBodyArb,
    fc.constantFrom('PUT', 'PUT', 'PUT', 'POST', 'DELETE'),
  )
  .map(([path, auth, ct, { body, encoding }, method]) => request(method, path, auth, ct, body, {}, encoding));

// Every route, with tricky segments; bodies that would be accepted where the route is right.
const validBody = fc.constantFrom(
  undefined,
  Buffer.from('{"url":"http://127.0.0.1:20001"}'),
  Buffer.from('{"url":"http://127.0.0.1:20002","ttl":60}'),
  Buffer.from('{"tool":"alpha","host":"127.0.0.1"}'),
  Buffer.from('{"tool":"beta","host":"127.1"}'),
  Buffer.from('{"host":"127.0.0.1","port":20001}'),
);
const pathCase = fc
  .tuple(methodArb, pathArb, authArb, validBody)
  .map(([method, path, auth, body]) => request(method, path, auth, 'application/json', body));

// Valid routes and bodies; everything else in the headers.
const headerCase = fc
  .tuple(
    fc.constantFrom(
      ['PUT', '/v1/tools/alpha/backends/a1', '{"url":"http://127.0.0.1:20001"}'],
      ['PUT', '/v1/tools/beta/backends/b1', '{"url":"http://127.0.0.1:20002"}'],
      ['POST', '/v1/ports', '{"tool":"alpha","host":"127.0.0.1"}'],
      ['DELETE', '/v1/tools/alpha/backends/a1', null],
      ['GET', '/v1/tools', null],
      ['GET', '/v1/tools/alpha', null],
      ['POST', '/v1/tools/beta/tokens', null],
    ),
    authArb,
    contentTypeArb,
    extraHeadersArb,
  )
  .map(([[method, path, body], auth, ct, extra]) => request(method!, path!, auth, ct, body === null ? undefined : Buffer.from(body!), extra));

const mixedCase = fc.oneof(bodyCase, pathCase, headerCase);

/** fast-check parameters for one property. */
function params<T>(offset: number, numRuns: number): fc.Parameters<T> {
  return { seed: SEED + offset, numRuns };
}

/** The property over `arb`, counting each case it really ran through `check` (not the runs asked for). */
function counted<T>(arb: fc.Arbitrary<T>, check: (v: T) => Promise<unknown>): fc.IAsyncPropertyWithHooks<[T]> {
  return fc.asyncProperty(arb, async (v) => {
    await check(v);
    cases++;
  });
}

before(() => {
  console.log(`    fast-check seed ${SEED} (replay: SWITCHBOARD_FUZZ_SEED=${SEED})`);
});

after(() => {
  const byStatus = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
  console.log(`    fuzz: ${cases} cases, ${requests} requests, seed ${SEED}; statuses ${byStatus}`);
});

describe('security: fuzzing the registration API (harness, embedded store)', function () {
  this.timeout(180_000);
  let ctx: Ctx;

  before(async () => {
    ctx = await open(new MemoryStore(), 'harness');
  });
  after(() => close(ctx));

  it(`bodies and content types on the heartbeat route (${RUNS.bodies} cases)`, async () => {
    const fast0 = ctx.target.fastPathAnswered() ?? 0;
    await fc.assert(counted(bodyCase, (req) => exercise(ctx, req)), params(1, RUNS.bodies));
    // The heartbeat fast path (plain node:http in front of express) took most of these: it is what is fuzzed.
    const fast = (ctx.target.fastPathAnswered() ?? 0) - fast0;
    assert.ok(fast > RUNS.bodies / 4, `the fast path answered only ${fast} of ${RUNS.bodies}`);
  });

  it(`paths: encoded, dotted, slashed, unicode segments on every route (${RUNS.paths} cases)`, async () => {
    await fc.assert(counted(pathCase, (req) => exercise(ctx, req)), params(2, RUNS.paths));
  });

  it(`headers: credentials, content types, overrides, oversize (${RUNS.headers} cases)`, async () => {
    await fc.assert(counted(headerCase, (req) => exercise(ctx, req)), params(3, RUNS.headers));
  });

  it(`concurrent bursts of ${BURST}: never a 5xx (${RUNS.bursts} cases)`, async () => {
    const burst = fc.array(mixedCase, { minLength: BURST, maxLength: BURST });
    await fc.assert(
      counted(burst, async (reqs) => {
        await Promise.all(reqs.map((req) => exercise(ctx, req, false)));
      }),
      params(4, RUNS.bursts),
    );
  });

  it('is alive and consistent afterwards', async () => {
    assert.equal((await ctx.client.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: 'http://127.0.0.1:20001' } })).status, 200);
    const listed = await ctx.client.call('GET', '/v1/tools');
    assert.equal(listed.status, 200);
    assert.ok(listed.body.tools.some((t: { tool: string }) => t.tool === 'alpha'));
  });
});

describe('security: fuzzing the registration API (startSwitchboard, embedded store)', function () {
  this.timeout(120_000);
  let ctx: Ctx;

  before(async () => {
    ctx = await open(new MemoryStore(), 'app');
  });
  after(() => close(ctx));

  it(`mixed bodies, paths and headers against the production composition (${RUNS.app} cases)`, async () => {
    await fc.assert(counted(mixedCase, (req) => exercise(ctx, req)), params(5, RUNS.app));
    assert.equal((await ctx.client.call('GET', '/v1/tools')).status, 200);
  });
});

describe('security: fuzzing the registration API (harness, real Redis)', function () {
  this.timeout(120_000);
  const kind = storeKinds().find((k) => k.name === 'redis')!;
  let ctx: Ctx | undefined;

  before(async function () {
    this.timeout(20_000);
    await kind.before();
    ctx = await open(await kind.create(), 'harness');
  });
  after(async () => {
    await close(ctx);
    await kind.after();
  });

  it(`mixed bodies, paths and headers (${RUNS.redis} cases)`, async () => {
    await fc.assert(counted(mixedCase, (req) => exercise(ctx!, req)), params(6, RUNS.redis));
    assert.equal((await ctx!.client.call('GET', '/v1/tools')).status, 200);
  });

  it('ran at least 10,000 cases in total', () => {
    assert.ok(cases >= 10_000, `only ${cases} cases`);
  });
});
