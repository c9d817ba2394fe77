import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fencedBlocks, markedSection } from '../support/markdown';
import { freePort } from '../support/redis-server';
import { startShell, type ShellScript } from '../support/shell';
import { sleep, waitFor } from '../support/wait';

const ROOT = path.join(__dirname, '..', '..');

// README.md's quick start, run as a reader runs it: each `sh` block between the quick-start markers is one
// terminal of its own, in the checkout, one after the other. What the test changes, and only that: the
// default ports (8080, 8282) become free ones, the token placeholder becomes the token `npm start` printed,
// and the environment holds those ports, a data directory and a port range of its own (so no state or port
// of another run is touched). If the README's commands, ports, paths or shown output drift from the code,
// this fails.

const PLACEHOLDER = 'sba_…';
const TOKEN_LINE = /^switchboard: admin token: (sba_\S+)$/m;

function quickStart(): { terminals: string[]; shown: string } {
  const blocks = fencedBlocks(markedSection(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), 'quick-start'));
  const terminals = blocks.filter((b) => b.lang === 'sh').map((b) => b.body);
  const shown = blocks.filter((b) => b.lang === 'text').map((b) => b.body);
  assert.equal(terminals.length, 3, 'the quick start has three terminals: npm start, the launcher, curl');
  assert.equal(shown.length, 1, 'the quick start shows what curl answers, once');
  return { terminals, shown: shown[0] };
}

/** The README's text for this run: its default ports made the free ones, the token placeholder the real token. */
function localized(text: string, ports: { proxy: number; control: number; tool: number }, token?: string): string {
  let out = text.replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.proxy}`).replaceAll('127.0.0.1:8282', `127.0.0.1:${ports.control}`);
  out = out.replace(/\b20000\b/g, String(ports.tool));
  if (token !== undefined) out = out.replaceAll(PLACEHOLDER, token);
  assert.doesNotMatch(out, /:8080\b|:8282\b/, `a default port left that the test cannot move:\n${out}`);
  return out;
}

/** The build `npm ci` makes (its `prepare`): npm test builds first; a run of this file alone builds once if none is there. */
function ensureBuilt(): void {
  if (existsSync(path.join(ROOT, 'dist', 'src', 'cli.js'))) return;
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `npm run build: ${r.stderr}`);
}

describe('README quick start, run as written', function () {
  this.timeout(120_000);
  const started: ShellScript[] = [];
  let dir = '';

  after(async () => {
    for (const s of started.reverse()) await s.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ends in a routed 200 from the example tool, as the README shows it', async () => {
    const { terminals, shown } = quickStart();
    assert.match(terminals[1], new RegExp(PLACEHOLDER), 'the second terminal sets the token npm start printed');
    ensureBuilt();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-quick-start-'));
    const ports = { proxy: await freePort(), control: await freePort(), tool: await freePort() };
    const config = path.join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ ports: { min: ports.tool, max: Math.min(ports.tool + 50, 65535) } }));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      SWITCHBOARD_PROXY_PORT: String(ports.proxy),
      SWITCHBOARD_CONTROL_PORT: String(ports.control),
      SWITCHBOARD_DATA_DIR: path.join(dir, 'data'),
      SWITCHBOARD_CONFIG: config,
      // npx must run this checkout's own bin: offline, it can never fetch a package of that name instead.
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
    };

    const server = startShell(localized(terminals[0], ports), { cwd: ROOT, env });
    started.push(server);
    const token = await waitFor('npm start to print its admin token', () => {
      if (server.proc.exitCode !== null) throw new Error(`npm start exited ${server.proc.exitCode}: ${server.output()}`);
      return TOKEN_LINE.exec(server.output())?.[1];
    }, 30_000);

    const launcher = startShell(localized(terminals[1], ports, token), { cwd: ROOT, env });
    started.push(launcher);
    // A reader runs curl once the launcher has logged the registration; the test waits for the route itself.
    await waitFor('the proxy to route hello', async () => {
      if (launcher.proc.exitCode !== null) throw new Error(`the launcher exited ${launcher.proc.exitCode}: ${launcher.output()}`);
      return (await fetch(`http://127.0.0.1:${ports.proxy}/hello/`)).status === 200;
    }, 60_000, 200);
    // Fallback discovery may route the example tool (listening on its assigned port) a moment before the
    // launcher's registration is logged: the line is waited for, not read at once.
    await waitFor('the launcher to log its registration', () => /"event":"backend\.registered"/.test(launcher.output()) || undefined, 30_000, 100);

    const client = startShell(localized(terminals[2], ports), { cwd: ROOT, env });
    started.push(client);
    assert.equal(await Promise.race([client.exited, sleep(20_000).then(() => 'curl still running after 20 s')]), 0, client.output());
    const answer = client.stdout().trim().split(/\r?\n/);
    const expected = localized(shown, ports).split('\n');
    assert.equal(answer[0], expected[0], `the status line: ${client.output()}`);
    assert.equal(answer[answer.length - 1], expected[expected.length - 1], `the body: ${client.output()}`);
  });
});
