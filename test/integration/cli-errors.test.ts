import assert from 'node:assert/strict';
import net from 'node:net';
import { listen } from '../../src/net/listen';
import { runCli } from '../support/process';
import { freePort } from '../support/redis-server';
import { certDir, makePair, writePair } from '../support/certificates';

const SEE_HELP = "see 'switchboard --help'\n";

/** A port the test itself listens on: taken for whatever the CLI tries to bind. */
async function heldPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  const port = await listen(server, 0, '127.0.0.1');
  return { port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Every word written to the terminal, and the lines of a stack trace among them. */
function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at /.test(l));
}

describe('the CLI when something is wrong: one line that says what', function () {
  this.timeout(60_000);

  it('a usage error is one line and a pointer to --help; the usage text is for --help alone', async () => {
    const cases: Array<[string[], string]> = [
      [['run', '--tool'], '--tool needs a value: --tool T'],
      [['run', '--tool', '--token', 'x', '--', 'server'], '--tool needs a value: --tool T'],
      [['heartbeat', '--tool', 'web', '--url'], '--url needs a value: --url URL'],
      [['status', '--token'], '--token needs a value: --token ADMIN'],
      [['token', 'issue', '--tool', 'web', '--token-file'], '--token-file needs a value: --token-file PATH'],
      [['serve', '--config'], '--config needs a value: --config FILE'],
      [['run', '--tool', 'web', '--bogus', '--', 'server'], 'unknown option --bogus'],
      [['no-such-verb'], 'unknown command "no-such-verb" (commands: serve, proxy, registry, token, block, status, run, heartbeat, version)'],
      [[], 'a command is needed: serve, proxy, registry, token, block, status, run, heartbeat, version'],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr, `switchboard: ${message}\n${SEE_HELP}`, args.join(' '));
      assert.equal(r.stdout, '');
    }
    for (const args of [['--help'], ['run', '--help'], ['token', 'issue', '-h']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^switchboard \S+: a self-healing reverse proxy with a port registry\n\nusage:\n/);
      assert.match(r.stdout, /--token-file PATH/);
      assert.equal(r.stderr, '');
    }
  });

  it('a --token-file that cannot be read is named, and no request is sent', async () => {
    const r = await runCli(['token', 'issue', '--tool', 'web', '--registry', 'http://127.0.0.1:1', '--token-file', '/nonexistent/switchboard-token']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `switchboard: --token-file: cannot read /nonexistent/switchboard-token (ENOENT)\n${SEE_HELP}`);
  });

  for (const [setting, env, key, verb] of [
    ['proxy', 'SWITCHBOARD_PROXY_PORT', 'proxy.port', 'serve'],
    ['control', 'SWITCHBOARD_CONTROL_PORT', 'control.port', 'registry'],
  ] as const) {
    it(`a ${setting} port already in use (a second npm start): names ${env}, exits 1, no stack, no admin token generated`, async () => {
      const held = await heldPort();
      try {
        const ports = { SWITCHBOARD_PROXY_PORT: String(await freePort()), SWITCHBOARD_CONTROL_PORT: String(await freePort()), [env]: String(held.port) };
        // No SWITCHBOARD_ADMIN_TOKEN: a process that got further would generate one and print it on stderr.
        const r = await runCli([verb], { ...ports, SWITCHBOARD_LOG_LEVEL: 'warn' });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(
          r.stderr,
          `switchboard: the ${setting} port 127.0.0.1:${held.port} is already in use (another switchboard running?): set ${env} (config key ${key}) to another port\n`,
        );
        assert.doesNotMatch(r.stdout + r.stderr, /admin token|admin_token\.generated|sba_/);
        assert.deepEqual(stackLines(r.stdout + r.stderr), []);
      } finally {
        await held.release();
      }
    });
  }

  it('an HTTPS port already in use: names SWITCHBOARD_TLS_PORT, exits 1, no stack, no admin token generated', async () => {
    const held = await heldPort();
    try {
      const files = writePair(certDir(), 'proxy', await makePair(['localhost']));
      const r = await runCli(['serve'], {
        SWITCHBOARD_PROXY_PORT: String(await freePort()),
        SWITCHBOARD_CONTROL_PORT: String(await freePort()),
        SWITCHBOARD_TLS_PORT: String(held.port),
        SWITCHBOARD_TLS_CERT: files.cert,
        SWITCHBOARD_TLS_KEY: files.key,
        SWITCHBOARD_LOG_LEVEL: 'warn',
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(
        r.stderr,
        `switchboard: the HTTPS port 127.0.0.1:${held.port} is already in use (another switchboard running?): set SWITCHBOARD_TLS_PORT (config key proxy.tls.port) to another port\n`,
      );
      assert.doesNotMatch(r.stdout + r.stderr, /admin token|admin_token\.generated|sba_/);
      assert.deepEqual(stackLines(r.stdout + r.stderr), []);
    } finally {
      await held.release();
    }
  });
});
