import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cliArgs } from '../support/process';

const ROOT = path.join(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

// Names operators script against are documented where an operator looks for them: every metric the
// code registers in docs/OBSERVABILITY.md, every command and flag the CLI's usage text names in docs/CLI.md.
describe('public names in docs/', () => {
  it('every metric src/metrics.ts registers is in docs/OBSERVABILITY.md', () => {
    const names = [...read('src/metrics.ts').matchAll(/name: '(switchboard_[a-z_]+)'/g)].map((m) => m[1]);
    assert.ok(names.length >= 20, `only ${names.length} metrics read`);
    const doc = read('docs/OBSERVABILITY.md');
    assert.deepEqual(names.filter((n) => !doc.includes(`\`${n}`) && !doc.includes(`${n}\``)), []);
  });

  it("every command and flag of the CLI's usage text is in docs/CLI.md", () => {
    const usage = spawnSync(process.execPath, cliArgs(['--help']), { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.equal(usage.status, 0, usage.stderr);
    const lines = usage.stdout.split('\n').filter((l) => /^\s+switchboard /.test(l));
    assert.ok(lines.length >= 8, usage.stdout);
    const doc = read('docs/CLI.md');
    const missing: string[] = [];
    for (const line of lines) {
      const verb = /^\s+switchboard ([a-z-]+(?: (?:issue|revoke))?)/.exec(line)![1];
      if (!doc.includes(`npx switchboard ${verb}`)) missing.push(`npx switchboard ${verb}`);
      for (const [flag] of line.matchAll(/--[a-z][a-z-]*/g)) if (!doc.includes(flag)) missing.push(`${verb} ${flag}`);
    }
    assert.deepEqual(missing, []);
  });
});
