import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ENV_KEYS } from '../../src/config/env';
import { parseRunArgs } from '../../src/launcher/args';

const ROOT = path.join(__dirname, '..', '..');
const UNITS = path.join(ROOT, 'config', 'systemd');
/** Where the units expect the checkout (docs/OPERATIONS.md installs it there). */
const INSTALL = '/opt/switchboard';
const BIN = `${INSTALL}/bin/switchboard.js`;

type Unit = Map<string, Map<string, string[]>>;

/** A unit file as section -> key -> values (a key may be given more than once). */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `not a key=value line inside a section: ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

function read(file: string): Unit {
  return parseUnit(readFileSync(path.join(UNITS, file), 'utf8'));
}

/** The one value of `key` in `section`. */
function one(unit: Unit, section: string, key: string): string {
  const values = unit.get(section)?.get(key) ?? [];
  assert.equal(values.length, 1, `[${section}] ${key}: ${values.length} values`);
  return values[0];
}

/** The variables an `Environment=` line sets. */
function environment(unit: Unit): Map<string, string> {
  return new Map((unit.get('Service')?.get('Environment') ?? []).map((v) => v.split('=', 2) as [string, string]));
}

const SERVERS = [
  { file: 'switchboard-serve.service', verb: 'serve' },
  { file: 'switchboard-proxy.service', verb: 'proxy' },
  { file: 'switchboard-registry.service', verb: 'registry' },
];
const LAUNCHER = 'switchboard-run@.service';

describe('config/systemd units', () => {
  it('are the three roles, the launcher template and the environment example, nothing else', () => {
    assert.deepEqual(readdirSync(UNITS).sort(), [...SERVERS.map((s) => s.file), LAUNCHER, 'switchboard.env.example'].sort());
  });

  for (const { file, verb } of SERVERS) {
    it(`${file} runs "switchboard ${verb}" as user switchboard, stops by draining, and is enabled for boot`, () => {
      const unit = read(file);
      assert.ok(one(unit, 'Unit', 'Description'));
      assert.equal(one(unit, 'Service', 'Type'), 'exec');
      assert.equal(one(unit, 'Service', 'ExecStart'), `${BIN} ${verb}`);
      assert.equal(one(unit, 'Service', 'User'), 'switchboard');
      assert.equal(one(unit, 'Service', 'WorkingDirectory'), INSTALL);
      assert.equal(one(unit, 'Service', 'EnvironmentFile'), '/etc/switchboard/switchboard.env');
      // The main process drains and stops its workers itself; a signal to every process would cut that short.
      assert.equal(one(unit, 'Service', 'KillMode'), 'mixed');
      assert.ok(Number(one(unit, 'Service', 'TimeoutStopSec')) > 10, 'TimeoutStopSec above proxy.drainTimeoutMs (10 s)');
      assert.equal(one(unit, 'Service', 'Restart'), 'always');
      assert.equal(one(unit, 'Service', 'RestartPreventExitStatus'), '2', 'a configuration error (exit 2) is not restarted');
      assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target');
    });
  }

  it('the embedded store keeps its state in the state directory, a registry its durable copy', () => {
    const serve = read('switchboard-serve.service');
    assert.equal(one(serve, 'Service', 'StateDirectory'), 'switchboard');
    assert.equal(environment(serve).get('SWITCHBOARD_DATA_DIR'), '/var/lib/switchboard');
    const registry = read('switchboard-registry.service');
    assert.equal(one(registry, 'Service', 'StateDirectory'), 'switchboard');
    assert.match(environment(registry).get('SWITCHBOARD_SNAPSHOT_PATH') ?? '', /^\/var\/lib\/switchboard\/[^/]+\.json$/);
    assert.match(one(serve, 'Unit', 'Conflicts'), /switchboard-proxy\.service/);
    assert.match(one(serve, 'Unit', 'Conflicts'), /switchboard-registry\.service/);
  });

  it(`${LAUNCHER} starts the launcher with flags it takes, signals it alone, and restarts only what a restart can fix`, () => {
    const unit = read(LAUNCHER);
    assert.equal(one(unit, 'Service', 'Type'), 'exec');
    const exec = one(unit, 'Service', 'ExecStart');
    assert.ok(exec.startsWith(`${BIN} run `), exec);
    // As systemd expands it for switchboard-run@hello with TOOL_COMMAND="/usr/bin/node server.js": %i the
    // instance, %d the credentials directory, ${X} one word.
    const vars: Record<string, string> = { ...Object.fromEntries(environment(unit)), TOOL_COMMAND: '/usr/bin/node server.js' };
    const credentials = mkdtempSync(path.join(os.tmpdir(), 'sb-credentials-'));
    writeFileSync(path.join(credentials, 'token'), 'sbs_hello_x_y\n');
    const words = exec.slice(BIN.length + 1).replaceAll('%i', 'hello').replaceAll('%d', credentials).split(' ').map((w) => {
      const braced = /^\$\{(\w+)\}$/.exec(w);
      assert.ok(braced || !w.includes('$'), `${w}: $X is split at spaces by systemd; the command is one word`);
      return braced ? (vars[braced[1]] ?? '') : w;
    });
    assert.equal(words[0], 'run');
    const options = parseRunArgs(words.slice(1), {});
    rmSync(credentials, { recursive: true, force: true });
    assert.equal(options.token, 'sbs_hello_x_y', 'the token is read from the credential');
    assert.equal(options.tool, 'hello');
    assert.equal(options.host, '127.0.0.1');
    assert.equal(options.restart, true);
    // One command line: the launcher runs it with sh -c, so a $PORT in TOOL_COMMAND is the assigned port.
    assert.deepEqual([options.command, ...options.args], ['/bin/sh', '-c', '/usr/bin/node server.js']);
    assert.match(exec, / --token-file %d\/token /);
    assert.equal(one(unit, 'Service', 'LoadCredential'), 'token:/etc/switchboard/run/%i.token');
    assert.equal(one(unit, 'Service', 'EnvironmentFile'), '/etc/switchboard/run/%i.env');
    // The launcher deregisters before it forwards SIGTERM; systemd must not signal the tool itself.
    assert.equal(one(unit, 'Service', 'KillMode'), 'mixed');
    assert.equal(one(unit, 'Service', 'Restart'), 'on-failure');
    assert.deepEqual(one(unit, 'Service', 'RestartPreventExitStatus').split(' ').sort(), ['1', '126', '127', '2']);
    assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });

  it('name only environment variables switchboard reads', () => {
    const known = new Set([...Object.keys(ENV_KEYS), 'SWITCHBOARD_CONFIG']);
    const files = readdirSync(UNITS);
    const named = files.flatMap((f) => [...readFileSync(path.join(UNITS, f), 'utf8').matchAll(/\bSWITCHBOARD_[A-Z_]+\b/g)].map((m) => [f, m[0]]));
    assert.ok(named.length > 10);
    assert.deepEqual(named.filter(([, v]) => !known.has(v)), []);
  });

  it('pass systemd-analyze verify (with the checkout standing in for /opt/switchboard)', () => {
    if (spawnSync('systemd-analyze', ['--version']).error) {
      // Not a pass: the fields above are still checked; only systemd's own parse is left out.
      console.log('      note: systemd-analyze is not installed (Debian package systemd); systemd\'s own check left out');
      return;
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-units-'));
    try {
      const units = readdirSync(UNITS).filter((f) => f.endsWith('.service'));
      for (const f of units) {
        copyFileSync(path.join(UNITS, f), path.join(dir, f));
        writeFileSync(path.join(dir, f), readFileSync(path.join(dir, f), 'utf8').replaceAll(INSTALL, ROOT));
      }
      const paths = [...units, 'switchboard-run@hello.service'].map((f) => path.join(dir, f));
      const r = spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8', timeout: 60_000 });
      // verify exits 0 on a key it ignores (misspelt, bad value) and says so on stderr: both count.
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
