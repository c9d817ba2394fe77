import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

// The folders of src/ are layers: the data plane (src/proxy/) sits above the control plane, and nothing
// below it may reach it, not even through another file. Read from the imports themselves (type-only ones
// included: they tie the code together just the same), so a new import that breaks a layer fails here.

const ROOT = path.join(__dirname, '..');
const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|(?:require|import)\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const target = path.resolve(path.dirname(file), m[1] ?? m[2]);
    for (const candidate of [`${target}.ts`, path.join(target, 'index.ts')]) {
      if (existsSync(candidate)) {
        out.push(candidate);
        break;
      }
    }
  }
  return out;
}

const graph = new Map(sources(SRC).map((f) => [f, importsOf(f)]));

/** Every file `file` reaches through imports, with the first path found to each. */
function reached(file: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[file, [file]]]);
  const queue = [file];
  while (queue.length) {
    const f = queue.shift()!;
    for (const d of graph.get(f) ?? []) {
      if (seen.has(d)) continue;
      seen.set(d, [...seen.get(f)!, d]);
      queue.push(d);
    }
  }
  return seen;
}

const rel = (f: string) => path.relative(ROOT, f);

/** Folders that must never reach the folders listed, directly or through any file. */
const RULES: Array<[string, string[]]> = [
  ['registry', ['proxy', 'control', 'discovery', 'launcher', 'cli']],
  ['discovery', ['proxy', 'control', 'launcher', 'cli']],
  // The launcher speaks to the registry only through its HTTP API (src/client/).
  ['launcher', ['proxy', 'control', 'registry', 'discovery', 'table', 'cli']],
  ['client', ['proxy', 'control', 'registry', 'discovery', 'launcher']],
  ['table', ['proxy', 'control', 'discovery', 'launcher']],
  ['net', ['proxy', 'control', 'registry', 'discovery', 'launcher', 'table']],
];

describe('layers (imports between the folders of src/)', () => {
  for (const [from, forbidden] of RULES) {
    it(`src/${from}/ reaches none of ${forbidden.map((f) => `src/${f}`).join(', ')}, not even through another file`, () => {
      const files = [...graph.keys()].filter((f) => rel(f).startsWith(`src/${from}/`));
      assert.ok(files.length > 0, `src/${from}/ has files`);
      const broken: string[] = [];
      for (const f of files) {
        for (const [target, via] of reached(f)) {
          const r = rel(target);
          if (forbidden.some((x) => r === `src/${x}` || r.startsWith(`src/${x}/`))) broken.push(via.map(rel).join(' -> '));
        }
      }
      assert.deepEqual(broken.slice(0, 10), [], `${broken.length} import paths break the layer`);
    });
  }

  it('reads imports at all: src/app.ts reaches the proxy, the registry and the launcher-free parts', () => {
    const r = [...reached(path.join(SRC, 'app.ts')).keys()].map(rel);
    for (const f of ['src/proxy/server.ts', 'src/registry/registry.ts', 'src/table/route-table.ts', 'src/net/connect-guard.ts']) assert.ok(r.includes(f), f);
  });
});
