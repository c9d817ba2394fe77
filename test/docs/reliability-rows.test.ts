import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tableRows } from '../support/markdown';

const ROOT = path.join(__dirname, '..', '..');
const DOC = path.join(ROOT, 'docs', 'RELIABILITY.md');

/** What one row's "proved by" cell cites: files (in order) with the titles quoted after each. */
interface Citation {
  row: string;
  file: string;
  titles: string[];
}

/** The rows of every table whose second column is "proved by", as [guarantee, proved by]. */
export function provedByCells(markdown: string): Array<[string, string]> {
  return tableRows(markdown, (c) => c[1] === 'proved by').map((c) => [c[0], c[1]]);
}

/**
 * The files and titles a cell cites: a backticked path under test/, config/ or bench/, or an
 * `npm run` script, followed by the titles quoted after it (until the next path).
 */
export function citations(row: string, cell: string): Citation[] {
  const out: Citation[] = [];
  for (const m of cell.matchAll(/`([^`]+)`|"([^"]+)"/g)) {
    const [, code, title] = m;
    if (code !== undefined) {
      if (/^(test|config|bench)\//.test(code) || code.startsWith('npm run ')) out.push({ row, file: code, titles: [] });
    } else {
      assert.ok(out.length > 0, `row "${row.slice(0, 60)}…": the title "${title}" follows no file`);
      out[out.length - 1].titles.push(title);
    }
  }
  return out;
}

/** The files a cited path names: itself, or the files a `*` in its last part matches. */
function filesOf(cited: string): string[] {
  if (!cited.includes('*')) return existsSync(path.join(ROOT, cited)) ? [cited] : [];
  const dir = path.dirname(cited);
  const pattern = new RegExp(`^${path.basename(cited).replace(/[.+?^${}()[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  const abs = path.join(ROOT, dir);
  return existsSync(abs) ? readdirSync(abs).filter((f) => pattern.test(f)).map((f) => path.join(dir, f)) : [];
}

/** The test names a file declares: mocha's it()/describe() titles, or promtool's `- name:` entries. */
function declaredTitles(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  if (file.endsWith('.yml')) return [...text.matchAll(/^\s*- name: (.+)$/gm)].map((m) => m[1].trim());
  const titles: string[] = [];
  // A title is the string literal opening an it( or describe( call: '…', "…" or `…` (may wrap lines).
  for (const m of text.matchAll(/\b(?:it|describe)(?:\.only)?\(\s*(['"`])((?:\\.|(?!\1)[\s\S])*)\1/g)) {
    titles.push(m[2].replace(/\\(.)/g, '$1'));
  }
  return titles;
}

const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex matching every prefix of `s` (the empty one too). */
const anyPrefixOf = (s: string): string => [...s].reduceRight((inner, ch) => `(?:${literal(ch)}${inner})?`, '');

/**
 * A quoted title matches a declared one whole, or as a prefix when the row shortened it with "…". A
 * `${…}` in a declared title (one test per store or per signal) stands for any text.
 */
export function titleMatches(quoted: string, declared: string): boolean {
  const parts = declared.split(/\$\{[^}]*\}/);
  const gap = '[\\s\\S]*';
  if (!quoted.endsWith('…')) return new RegExp(`^${parts.map(literal).join(gap)}$`).test(quoted);
  const want = quoted.slice(0, -1);
  // The quoted text ends within one of the literal parts: every part before it whole, this one begun.
  return parts.some((part, k) => {
    const before = parts.slice(0, k).map(literal);
    const head = k === 0 ? '' : `${before.join(gap)}${gap}`;
    return new RegExp(`^${head}${anyPrefixOf(part)}$`).test(want);
  });
}

describe('docs/RELIABILITY.md rows', () => {
  const markdown = readFileSync(DOC, 'utf8');
  const rows = provedByCells(markdown);

  it('are found in the document (the tables were parsed)', () => {
    assert.ok(rows.length >= 40, `only ${rows.length} rows parsed`);
    console.log(`      ${rows.length} rows`);
  });

  it('each name at least one test file, script or bench', () => {
    const without = rows.filter(([g, p]) => citations(g, p).length === 0).map(([g]) => g.slice(0, 80));
    assert.deepEqual(without, []);
  });

  it('each cite files that exist and test titles those files declare', () => {
    const scripts = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    const wrong: string[] = [];
    let titles = 0;
    for (const [g, p] of rows) {
      for (const c of citations(g, p)) {
        const where = `row "${g.slice(0, 60)}…"`;
        if (c.file.startsWith('npm run ')) {
          if (!scripts[c.file.slice('npm run '.length)]) wrong.push(`${where}: no script ${c.file}`);
          continue;
        }
        const files = filesOf(c.file);
        if (files.length === 0) {
          wrong.push(`${where}: ${c.file} does not exist`);
          continue;
        }
        const declared = files.flatMap(declaredTitles);
        for (const t of c.titles) {
          titles++;
          if (!declared.some((d) => titleMatches(t, d))) wrong.push(`${where}: ${c.file} has no test titled "${t}"`);
        }
      }
    }
    assert.deepEqual(wrong, []);
    console.log(`      ${titles} quoted titles found in their files`);
  });
});

describe('the citation check itself', () => {
  it('matches whole titles, "…" prefixes and titles with ${…} parts, and nothing else', () => {
    assert.ok(titleMatches('counts it', 'counts it'));
    assert.ok(!titleMatches('counts', 'counts it'));
    assert.ok(titleMatches('counts…', 'counts it'));
    assert.ok(!titleMatches('counted…', 'counts it'));
    assert.ok(titleMatches('after a SIGTERM…', 'after a ${signal}: the same port'));
    assert.ok(titleMatches('after a SIGKILL: the same port', 'after a ${signal}: the same port'));
    assert.ok(!titleMatches('after a SIGKILL: another port', 'after a ${signal}: the same port'));
    assert.ok(titleMatches('gives up after 8 occupied…', 'gives up after ${N} occupied ports'));
  });

  it('reads the files and titles of a cell in order', () => {
    const c = citations('r', '`test/a.test.ts` "one…", "two" (both stores); `config/x.test.yml` "three"; `npm run x`');
    assert.deepEqual(c.map((x) => [x.file, x.titles]), [
      ['test/a.test.ts', ['one…', 'two']],
      ['config/x.test.yml', ['three']],
      ['npm run x', []],
    ]);
  });
});
