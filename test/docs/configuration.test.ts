import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SCHEMA } from '../../src/config';
import { settingsOf } from '../../src/config/settings';
import { tableRows } from '../support/markdown';

// docs/CONFIGURATION.md's tables against the schema every setting is declared in: a setting added, given
// another default, bounds or environment variable fails here until the document says so too. README.md's
// summary table lists some of them: each of its rows must say what the schema says as well.

const ROOT = path.join(__dirname, '..', '..');
const isConfigTable = (c: string[]) => c.join('|') === 'environment|key|default|meaning';
const ROWS = tableRows(readFileSync(path.join(ROOT, 'docs', 'CONFIGURATION.md'), 'utf8'), isConfigTable);
const SUMMARY = tableRows(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), isConfigTable);
const SETTINGS = new Map(settingsOf(SCHEMA));
const code = (cell: string) => cell.replace(/^`|`$/g, '');

/** How the tables write a default: "unset" for null, numbers bare, the rest in backticks as JSON text. */
function written(value: unknown): string {
  if (value === null) return 'unset';
  if (typeof value === 'number') return String(value);
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

/** Each row of `rows` that names a setting says its environment variable, default and bounds as the schema has them. */
function checkRows(rows: string[][], where: string): void {
  for (const row of rows) {
    const key = code(row[1]);
    if (!key) continue; // SWITCHBOARD_CONFIG: a variable of no setting
    const setting = SETTINGS.get(key);
    assert.ok(setting, `${where}: ${key} is no setting of the schema`);
    assert.equal(code(row[0]), setting.env ?? '', `${where}: ${key}'s environment variable`);
    const w = written(setting.default);
    assert.ok(row[2] === w || row[2].startsWith(`${w} `) || row[2].startsWith(`${w}:`), `${where}: ${key}: says ${row[2]}, the schema ${w}`);
    if (typeof setting.minimum === 'number' && typeof setting.maximum === 'number') {
      assert.ok(row[3].includes(`(${setting.minimum}..${setting.maximum}`), `${where}: ${key}'s meaning says (${setting.minimum}..${setting.maximum}`);
    }
  }
}

describe('configuration tables (docs/CONFIGURATION.md, and the summary in README.md)', () => {
  it('list every setting of the schema once, and nothing else but SWITCHBOARD_CONFIG', () => {
    const keys = ROWS.map((r) => code(r[1])).filter(Boolean);
    assert.deepEqual([...keys].sort(), [...SETTINGS.keys()].sort());
    assert.equal(new Set(keys).size, keys.length, 'a key listed twice');
    assert.deepEqual(ROWS.filter((r) => !r[1]).map((r) => r[0]), ['`SWITCHBOARD_CONFIG`']);
  });

  it("give each setting's environment variable, default and constant bounds as the schema has them", () => {
    checkRows(ROWS, 'docs/CONFIGURATION.md');
  });

  it('README.md summarises some of them, each as the schema has it', () => {
    assert.ok(SUMMARY.length >= 8, `the README's summary has ${SUMMARY.length} rows`);
    const keys = SUMMARY.map((r) => code(r[1])).filter(Boolean);
    assert.equal(new Set(keys).size, keys.length, 'a key listed twice');
    checkRows(SUMMARY, 'README.md');
  });
});
