import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fencedBlocks, tableRows } from '../support/markdown';

const ROOT = path.join(__dirname, '..', '..');
const OPERATIONS = readFileSync(path.join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');

/** The alert rules of config/prometheus/alerts.yml: name -> severity. */
function alertRules(): Map<string, string> {
  const rules = new Map<string, string>();
  let current: string | undefined;
  for (const line of readFileSync(path.join(ROOT, 'config', 'prometheus', 'alerts.yml'), 'utf8').split('\n')) {
    const alert = /^\s*- alert: (\S+)/.exec(line);
    if (alert) current = alert[1];
    const severity = /^\s*severity: (\S+)/.exec(line);
    if (severity && current) rules.set(current, severity[1]);
  }
  return rules;
}

const code = (cell: string) => cell.replace(/^`|`$/g, '');

// docs/OPERATIONS.md says where each alert goes: a rule added to alerts.yml, or given another severity,
// fails here until the routing table says where it goes.
describe('docs/OPERATIONS.md alert routing', () => {
  const rules = alertRules();
  const rows = tableRows(OPERATIONS, (c) => c.join('|') === 'alert|severity|route to');

  it('routes every rule of alerts.yml once, with the severity the rule has', () => {
    assert.ok(rules.size >= 10, `only ${rules.size} rules read`);
    assert.deepEqual(rows.map((r) => code(r[0])).sort(), [...rules.keys()].sort());
    for (const [name, severity] of rows.map((r) => [code(r[0]), r[1]])) assert.equal(severity, rules.get(name), name);
  });

  it('names only real rules in the Alertmanager example', () => {
    const yaml = fencedBlocks(OPERATIONS).filter((b) => b.lang === 'yaml');
    assert.equal(yaml.length, 1);
    const named = [...yaml[0].body.matchAll(/\bSwitchboard\w+/g)].map((m) => m[0]);
    assert.ok(named.length >= 3);
    assert.deepEqual(named.filter((n) => !rules.has(n)), []);
  });
});
