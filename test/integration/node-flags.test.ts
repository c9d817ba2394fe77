import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/process';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'switchboard.js');

/** The Node flags in the bin's shebang (`#!/usr/bin/env -S node FLAGS`). */
function shebangFlags(): string[] {
  const first = readFileSync(BIN, 'utf8').split('\n')[0];
  const m = /^#!\/usr\/bin\/env -S node( .*)?$/.exec(first);
  assert.ok(m, `unexpected shebang: ${first}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

describe('the Node flags the CLI runs with', () => {
  it('npm start passes the same flags as the bin shebang', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const flags = shebangFlags();
    assert.ok(flags.includes('--max-semi-space-size=4'));
    assert.equal(pkg.scripts.start, `node ${flags.join(' ')} bin/switchboard.js serve`);
  });

  it('bin/switchboard.js run directly starts Node with them (env -S works here)', async function () {
    this.timeout(20_000);
    const proxyPort = await freePort();
    const controlPort = await freePort();
    const proc = spawn(BIN, ['serve'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', SWITCHBOARD_PROXY_PORT: String(proxyPort), SWITCHBOARD_CONTROL_PORT: String(controlPort), SWITCHBOARD_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      await waitFor('healthz', async () => (await fetch(`http://127.0.0.1:${controlPort}/healthz`)).ok, 15_000);
      const argv = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of shebangFlags()) assert.ok(argv.includes(flag), `${flag} missing from ${argv.join(' ')}`);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
});
