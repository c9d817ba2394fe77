import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import openapi from '../../docs/openapi.json';
import { silentLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { registryRouter } from '../../src/registry/api';
import { MemoryStore } from '../../src/registry/memory-store';
import { Registry } from '../../src/registry/registry';
import { compileComponent, componentsAjv } from '../../src/registry/validate';
import { loadConfig } from '../../src/config';
import { startApi, type Api } from './harness';
import { startBackend } from '../support/backend';

type Doc = {
  paths: Record<string, Record<string, unknown>>;
  components: { parameters: Record<string, { name: string; in: string }> };
};
const doc = openapi as unknown as Doc;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: unknown };
}

function router() {
  const config = loadConfig({ env: {}, overrides: { adminToken: 'x'.repeat(32) } });
  const store = new MemoryStore();
  const metrics = new Metrics();
  const registry = new Registry({ store, config, metrics, logger: silentLogger() });
  return registryRouter({ registry, adminToken: 'x'.repeat(32), store, logger: silentLogger(), metrics });
}

/** "/v1/tools/:tool" -> "/v1/tools/{tool}" */
function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

function paramRef(p: unknown): { name: string; in: string } {
  const ref = (p as { $ref?: string }).$ref;
  if (ref) return doc.components.parameters[ref.split('/').pop()!];
  return p as { name: string; in: string };
}

describe('docs/openapi.json and the registry router', () => {
  const stack = (router() as unknown as { stack: Layer[] }).stack;

  const routed = new Set<string>();
  for (const layer of stack) {
    if (!layer.route) continue;
    for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') routed.add(`${m.toUpperCase()} ${toOpenApiPath(layer.route.path)}`);
  }
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (METHODS.includes(m)) documented.add(`${m.toUpperCase()} ${path}`);
  }

  it('every routed method and path is documented', () => {
    assert.ok(routed.size >= 9, `only ${routed.size} routes found: is the router stack readable?`);
    assert.deepEqual([...routed].filter((r) => !documented.has(r)), []);
  });

  it('every documented method and path is routed', () => {
    assert.deepEqual([...documented].filter((r) => !routed.has(r)), []);
  });

  it('no routes hide outside the route table (no sub-routers, only the 404 and error handlers)', () => {
    const others = stack.filter((l) => !l.route);
    assert.equal(others.length, 2);
    for (const l of others) assert.equal(l.handle.stack, undefined);
  });

  it('each documented path declares exactly the path parameters its route has', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const declared = ((item.parameters as unknown[]) ?? []).map(paramRef).filter((p) => p.in === 'path').map((p) => p.name).sort();
      assert.deepEqual(declared, inPath, path);
    }
  });

  it('every operation documents 401 and, when it takes a body, 400, 413 and 415', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        if (!METHODS.includes(m)) continue;
        const o = op as { responses: Record<string, unknown>; requestBody?: unknown };
        assert.ok(o.responses['401'], `${m} ${path}: 401`);
        if (o.requestBody) for (const s of ['400', '413', '415']) assert.ok(o.responses[s], `${m} ${path}: ${s}`);
      }
    }
  });
});

describe('live answers match the documented schemas', () => {
  let api: Api;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  const ajv = componentsAjv();
  const schema = (name: string): ValidateFunction => compileComponent(ajv, name);
  const conforms = (name: string, body: unknown) => {
    const v = schema(name);
    assert.ok(v(body), `${name}: ${ajv.errorsText(v.errors)} in ${JSON.stringify(body)}`);
  };

  before(async () => {
    backend = await startBackend('ok');
    api = await startApi({ store: new MemoryStore() });
  });

  after(async () => {
    await api.close();
    await backend.close();
  });

  it('Backend, ToolEntry, ToolList, Assignment, AssignmentList, TokenCreated and Error', async () => {
    const put = await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backend.url, clientVersion: 'v1' } });
    assert.equal(put.status, 200);
    conforms('Backend', put.body);
    conforms('ToolEntry', (await api.call('GET', '/v1/tools/alpha')).body);
    conforms('ToolList', (await api.call('GET', '/v1/tools')).body);
    const port = await api.call('POST', '/v1/ports', { json: { tool: 'beta', host: '127.0.0.1' } });
    assert.equal(port.status, 200, port.text);
    conforms('Assignment', port.body);
    conforms('AssignmentList', (await api.call('GET', '/v1/ports')).body);
    const tok = await api.call('POST', '/v1/tools/alpha/tokens');
    assert.equal(tok.status, 201);
    conforms('TokenCreated', tok.body);
    for (const bad of [
      await api.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backend.url, x: 1 } }),
      await api.call('GET', '/v1/tools', { token: null }),
      await api.call('GET', '/v1/nope'),
      await api.call('PUT', '/v1/tools/alpha/backends/a1', { raw: '{' }),
    ]) {
      assert.ok(bad.status >= 400);
      conforms('Error', bad.body);
    }
  });

  it('the TTL bounds in force are the configured ones, not the document defaults', async () => {
    const narrow = await startApi({ store: new MemoryStore(), overrides: { leases: { minTtlSeconds: 10, maxTtlSeconds: 20, defaultTtlSeconds: 15 } } });
    try {
      const ttl = async (n: number) => (await narrow.call('PUT', '/v1/tools/alpha/backends/a1', { json: { url: backend.url, ttl: n } })).status;
      assert.equal(await ttl(9), 400);
      assert.equal(await ttl(10), 200);
      assert.equal(await ttl(20), 200);
      assert.equal(await ttl(21), 400);
    } finally {
      await narrow.close();
    }
  });
});
