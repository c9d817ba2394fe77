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
  ['net', ['proxy', 'control', 'registry', 'discovery', 'launcher', 'table']],
  // Every floor reads the configuration (launchers and CLI clients its defaults): it sits on net alone.
  ['config', ['proxy', 'control', 'registry', 'discovery', 'launcher', 'table', 'client', 'cli']],
];

/**
 * Floors that may reach nothing but what is listed (their own folder among it), directly or through any
 * file: the route table sits below the registry and reads only the network helpers and the logger's type.
 */
const ONLY: Array<[string, string[]]> = [['table', ['table', 'net', 'logger.ts', 'log-batch.ts']]];

/** Whether `file` (relative to the root) is one of the files or folders of src/ listed. */
const within = (file: string, listed: string[]) => listed.some((x) => file === `src/${x}` || file.startsWith(`src/${x}/`));

/** The import paths from a file of src/`from`/ to a file `breaks` says it must not reach. */
function brokenPaths(from: string, breaks: (file: string) => boolean): string[] {
  const files = [...graph.keys()].filter((f) => rel(f).startsWith(`src/${from}/`));
  assert.ok(files.length > 0, `src/${from}/ has files`);
  const broken: string[] = [];
  for (const f of files) {
    for (const [target, via] of reached(f)) if (breaks(rel(target))) broken.push(via.map(rel).join(' -> '));
  }
  return broken;
}

describe('layers (imports between the folders of src/)', () => {
  for (const [from, forbidden] of RULES) {
    it(`src/${from}/ reaches none of ${forbidden.map((f) => `src/${f}`).join(', ')}, not even through another file`, () => {
      const broken = brokenPaths(from, (r) => within(r, forbidden));
      assert.deepEqual(broken.slice(0, 10), [], `${broken.length} import paths break the layer`);
    });
  }

  for (const [from, allowed] of ONLY) {
    it(`src/${from}/ reaches only ${allowed.map((f) => `src/${f}`).join(', ')}, not even through another file`, () => {
      const broken = brokenPaths(from, (r) => !within(r, allowed));
      assert.deepEqual(broken.slice(0, 10), [], `${broken.length} import paths leave the floor`);
    });
  }

  it('reads imports at all: src/app.ts reaches the proxy, the registry and the launcher-free parts', () => {
    const r = [...reached(path.join(SRC, 'app.ts')).keys()].map(rel);
    for (const f of ['src/proxy/server.ts', 'src/registry/registry.ts', 'src/table/route-table.ts', 'src/net/connect-guard.ts']) assert.ok(r.includes(f), f);
  });
});
