import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SCHEMA } from '../src/config';
import { settingsOf } from '../src/config/settings';
import { tableRows } from './support/markdown';

// README.md's configuration tables against the schema every setting is declared in: a setting added,
// given another default, bounds or environment variable fails here until the README says so too.

const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const ROWS = tableRows(README, (c) => c.join('|') === 'environment|key|default|meaning');
const SETTINGS = new Map(settingsOf(SCHEMA));
const code = (cell: string) => cell.replace(/^`|`$/g, '');
const rowOf = new Map(ROWS.map((r) => [code(r[1]), r]));

/** How the tables write a default: "unset" for null, numbers bare, the rest in backticks as JSON text. */
function written(value: unknown): string {
  if (value === null) return 'unset';
  if (typeof value === 'number') return String(value);
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

describe('README configuration tables', () => {
  it('list every setting of the schema once, and nothing else but SWITCHBOARD_CONFIG', () => {
    const keys = ROWS.map((r) => code(r[1])).filter(Boolean);
    assert.deepEqual([...keys].sort(), [...SETTINGS.keys()].sort());
    assert.equal(new Set(keys).size, keys.length, 'a key listed twice');
    assert.deepEqual(ROWS.filter((r) => !r[1]).map((r) => r[0]), ['`SWITCHBOARD_CONFIG`']);
  });

  it("name each setting's environment variable, or none when the schema has none", () => {
    for (const [key, setting] of SETTINGS) assert.equal(code(rowOf.get(key)![0]), setting.env ?? '', key);
  });

  it("give each setting's default as the schema has it", () => {
    for (const [key, setting] of SETTINGS) {
      const cell = rowOf.get(key)![2];
      const w = written(setting.default);
      assert.ok(cell === w || cell.startsWith(`${w} `) || cell.startsWith(`${w}:`), `${key}: the README says ${cell}, the schema ${w}`);
    }
  });

  it('give the constant bounds of every number setting as the schema has them', () => {
    for (const [key, setting] of SETTINGS) {
      if (typeof setting.minimum !== 'number' || typeof setting.maximum !== 'number') continue;
      assert.ok(rowOf.get(key)![3].includes(`(${setting.minimum}..${setting.maximum}`), `${key}: the README's meaning says (${setting.minimum}..${setting.maximum}`);
    }
  });
});
