import assert from 'node:assert/strict';
import openapi from '../../docs/openapi.json';
import type { Store } from '../../src/registry/store';
import { documentedRoutes, fillPath } from '../security/support';
import { startApi, storeKinds, type Api } from './harness';

/**
 * Every numeric field of every request body the API document describes (read from docs/openapi.json, so
 * a field added there is covered here): each value out of its range, in every size JSON can spell, answers
 * 400 naming the field and its real bounds. Real: the lease bounds are configured here to other values
 * than the document's defaults, and the message must say the configured ones.
 */

type Schema = { $ref?: string; type?: string; minimum?: number; maximum?: number; properties?: Record<string, Schema> };

const schemas = (openapi as unknown as { components: { schemas: Record<string, Schema> } }).components.schemas;
const resolve = (s: Schema): Schema => (s.$ref ? resolve(schemas[s.$ref.split('/').pop()!]) : s);

const LEASES = { minTtlSeconds: 7, defaultTtlSeconds: 30, maxTtlSeconds: 99 };
/** proxy.maxResponseTimeoutSeconds here: another value than the document's default. */
const MAX_RESPONSE_TIMEOUT_S = 77;

interface NumericField {
  route: string;
  method: string;
  path: string;
  example: Record<string, unknown>;
  name: string;
  min: number;
  max: number;
}

/** Each numeric property of each documented body, with the bounds the server must enforce. */
function numericFields(): NumericField[] {
  const doc = openapi as unknown as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>> };
  const out: NumericField[] = [];
  for (const r of documentedRoutes()) {
    if (!r.hasBody) continue;
    const body = resolve(doc.paths[r.path][r.method.toLowerCase()].requestBody!.content['application/json'].schema);
    for (const [name, raw] of Object.entries(body.properties ?? {})) {
      const prop = resolve(raw);
      if (prop.type !== 'integer' && prop.type !== 'number') continue;
      assert.ok(prop.minimum !== undefined && prop.maximum !== undefined, `${r.key} ${name}: the document gives no bounds`);
      // The lease bounds and the longest response timeout are the server's configuration; the document shows their defaults.
      const lease = name === 'ttl' && r.path.endsWith('/backends/{id}');
      const [min, max] = lease ? [LEASES.minTtlSeconds, LEASES.maxTtlSeconds] : name === 'responseTimeoutSeconds' ? [prop.minimum, MAX_RESPONSE_TIMEOUT_S] : [prop.minimum, prop.maximum];
      out.push({ route: r.key, method: r.method, path: fillPath(r.path, { tool: 'alpha', id: 'a1' }), example: r.example as Record<string, unknown>, name, min, max });
    }
  }
  return out;
}

const FIELDS = numericFields();

/** Raw JSON spellings of values out of [min, max]: the neighbours, the largest finite doubles, and what parses as Infinity. */
const outOfRange = (f: NumericField): string[] => [String(f.min - 1), String(f.max + 1), '1e308', '-1e308', '1e309', '-1e309', String(f.max + 0.5)];

describe('numeric fields of the documented bodies', () => {
  it("are a lease's ttl and restarts, the discovery port, a ban's ttl and a tool policy's numbers (the document was read)", () => {
    assert.deepEqual(FIELDS.map((f) => `${f.route} ${f.name}`).sort(), [
      'POST /v1/tools/{tool}/discoveries port',
      'PUT /v1/blocks/{id} ttl',
      'PUT /v1/tools/{tool}/backends/{id} restarts',
      'PUT /v1/tools/{tool}/backends/{id} ttl',
      'PUT /v1/tools/{tool}/policy maxBodyBytes',
      'PUT /v1/tools/{tool}/policy maxConcurrent',
      'PUT /v1/tools/{tool}/policy responseTimeoutSeconds',
    ]);
  });
});

for (const kind of storeKinds()) {
  describe(`every out-of-range number of every API body answers 400 with the field and its real bounds (${kind.name} store)`, function () {
    this.timeout(20_000);
    before(() => kind.before());
    after(() => kind.after());

    for (const fastPath of [true, false]) {
      describe(fastPath ? 'heartbeats through the fast path' : 'express alone', () => {
        let store: Store;
        let api: Api;
        beforeEach(async () => {
          store = await kind.create();
          api = await startApi({ store, fastPath, overrides: { leases: LEASES, proxy: { port: 18080, maxResponseTimeoutSeconds: MAX_RESPONSE_TIMEOUT_S } } });
        });
        afterEach(async () => {
          await api.close();
          await store.close();
        });

        for (const f of FIELDS) {
          it(`${f.route}: ${f.name} out of ${f.min}..${f.max}`, async () => {
            const before = await store.snapshot();
            for (const value of outOfRange(f)) {
              // Spliced in as text: JSON.stringify cannot spell 1e309.
              const raw = JSON.stringify({ ...f.example, [f.name]: '@@' }).replace('"@@"', value);
              const r = await api.call(f.method, f.path, { raw });
              const where = `${f.name}: ${value} -> ${r.status} ${r.text}`;
              assert.equal(r.status, 400, where);
              assert.equal(r.body.error.field, f.name, where);
              assert.match(r.body.error.code, /^(out_of_range|invalid_type)$/, where);
              assert.ok(r.body.error.message.includes(`between ${f.min} and ${f.max}`), where);
              assert.ok(!r.body.error.message.includes('undefined'), where);
            }
            const after = await store.snapshot();
            assert.deepEqual([after.version, after.backends, after.assignments, after.policies], [before.version, before.backends, before.assignments, before.policies], 'nothing stored');
          });
        }
      });
    }
  });
}
