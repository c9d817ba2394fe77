import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/wait';

const ROOT = path.join(__dirname, '..', '..');

// What `npm start` and an installed `switchboard` run: bin/switchboard.js executed as a program (a shell line
// that execs node), on the compiled CLI (npm test builds it first). The node flags in that line are part of
// what ships: the young generation's limit keeps a proxy of 100,000 routes within its memory target (docs/BENCHMARKS.md).
describe('bin/switchboard.js, as npm start runs it', function () {
  this.timeout(30_000);

  it('npm start is the bin itself, which execs node with the memory flag', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    assert.equal(pkg.scripts.start, 'bin/switchboard.js serve');
    assert.equal(pkg.bin.switchboard, 'bin/switchboard.js');
    const [shebang, launch] = readFileSync(path.join(ROOT, 'bin', 'switchboard.js'), 'utf8').split('\n', 2);
    assert.equal(shebang, '#!/bin/sh');
    assert.equal(launch, '":" //; MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec node --max-semi-space-size=8 --heap-growing-percent=20 --liftoff-only "$0" "$@"');
  });

  it('run by node directly, the launch line is a no-op and the CLI still runs', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'switchboard.js'), 'no-such-verb'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no-such-verb/);
  });

  it('runs serve on the embedded store with the flag, answers, and exits 0 on SIGTERM', async () => {
    const control = await freePort();
    const proxy = await freePort();
    // Executed directly, not through `node`: the kernel runs the shell of the shebang, as for `npm start`.
    const proc = spawn(path.join(ROOT, 'bin', 'switchboard.js'), ['serve'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', SWITCHBOARD_CONTROL_PORT: String(control), SWITCHBOARD_PROXY_PORT: String(proxy), SWITCHBOARD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr?.on('data', (d) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await waitFor('/healthz', async () => {
        if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${err}`);
        return (await fetch(`http://127.0.0.1:${control}/healthz`)).ok;
      }, 20_000);
      // The shell execs node in place: the pid is node's, its command line the launch line's flags.
      const argv = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of ['--max-semi-space-size=8', '--heap-growing-percent=20', '--liftoff-only']) assert.ok(argv.includes(flag), argv.join(' '));
      // ...and its environment the launch line's default, where the caller set none.
      const environ = readFileSync(`/proc/${proc.pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('MALLOC_ARENA_MAX=2'), environ.join(' '));
      const res = await fetch(`http://127.0.0.1:${proxy}/no-such-tool/`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 404);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
  });
});
