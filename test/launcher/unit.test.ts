import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { isTransient, RegistryClient, RegistryHttpError } from '../../src/client/registry-client';
import { createLogger } from '../../src/logger';
import { HeartbeatLoop } from '../../src/launcher/heartbeat-loop';
import { parseHeartbeatArgs, parseRunArgs } from '../../src/launcher/args';
import { Backoff, jittered } from '../../src/launcher/backoff';
import { exitStatus } from '../../src/launcher/child';
import { stopStatus } from '../../src/launcher/signals';
import { idForUrl } from '../../src/launcher/heartbeat-command';
import { backendId, backendUrl, newInstance } from '../../src/launcher/identity';
import { sleep } from '../../src/launcher/sleep';
import { waitFor } from '../support/wait';

function usage(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_PARSE_ARGS_USAGE');
    assert.match(err.message, re);
    return true;
  });
}

describe('launcher parts', () => {
  describe('Backoff', () => {
    it('doubles from the base up to the cap, each delay jittered within [d/2, d]', () => {
      for (const r of [0, 0.5, 0.999]) {
        const b = new Backoff(500, 4000, () => r);
        const delays = Array.from({ length: 7 }, () => b.next());
        const ceilings = [500, 1000, 2000, 4000, 4000, 4000, 4000];
        delays.forEach((d, i) => assert.ok(d >= ceilings[i] / 2 && d <= ceilings[i], `delay ${i} = ${d}`));
        b.reset();
        assert.ok(b.next() <= 500);
      }
    });

    it('a new cap applies to later delays, never below the base', () => {
      const b = new Backoff(500, 60_000, () => 1);
      for (let i = 0; i < 10; i++) b.next();
      b.setCap(1667);
      assert.equal(b.next(), 1667);
      b.setCap(10);
      assert.equal(b.next(), 500);
    });

    it('jittered stays within ±fraction', () => {
      assert.equal(jittered(1000, 0.1, () => 0), 900);
      assert.equal(jittered(1000, 0.1, () => 1), 1100);
      assert.equal(jittered(1000, 0.1, () => 0.5), 1000);
    });
  });

  it('sleep ends early, answering false, when its signal aborts', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort();
    assert.equal(await p, false);
    assert.equal(await sleep(1), true);
  });

  it('exit status: the code, or 128 + the signal number', () => {
    assert.equal(exitStatus({ code: 0, signal: null }), 0);
    assert.equal(exitStatus({ code: 7, signal: null }), 7);
    assert.equal(exitStatus({ code: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitStatus({ code: null, signal: 'SIGINT' }), 130);
    assert.equal(exitStatus({ code: null, signal: 'SIGKILL' }), 137);
  });

  it('stop status: a stop asked for by SIGTERM or SIGINT is 0, whether the child died of it or exited 128 + n; other ends keep their status', () => {
    assert.equal(stopStatus('SIGTERM', { code: null, signal: 'SIGTERM' }), 0);
    assert.equal(stopStatus('SIGTERM', { code: 143, signal: null }), 0);
    assert.equal(stopStatus('SIGINT', { code: null, signal: 'SIGINT' }), 0);
    assert.equal(stopStatus('SIGTERM', { code: 0, signal: null }), 0);
    assert.equal(stopStatus('SIGTERM', { code: 3, signal: null }), 3, 'a status the child chose is its own');
    assert.equal(stopStatus('SIGTERM', { code: null, signal: 'SIGKILL' }), 137, 'killed by something else: a failure');
    assert.equal(stopStatus('SIGTERM', null), 0, 'stopped before the child started');
    assert.equal(stopStatus('SIGHUP', null), 129, 'SIGHUP is not a stop asked for');
  });

  it('backend ids and urls: stable per host and port, valid for the API, IPv6 bracketed', () => {
    assert.equal(backendId('127.0.0.1', 20000), '127.0.0.1-20000');
    assert.equal(backendId('::1', 20000), '1-20000');
    assert.match(backendId('fd00::a:1', 8080), /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
    assert.equal(backendUrl('::1', 20000), 'http://[::1]:20000');
    assert.equal(backendUrl('node7.internal', 80), 'http://node7.internal:80');
    assert.equal(idForUrl('http://127.0.0.1:8080'), '127.0.0.1-8080');
    assert.equal(idForUrl('https://[::1]/'), '1-443');
  });

  it('instances: 20 base32 characters, a new one per run, valid for the API', () => {
    const a = newInstance();
    assert.match(a, /^[a-z2-7]{20}$/);
    assert.match(a, /^[A-Za-z0-9_-]{8,64}$/);
    assert.notEqual(newInstance(), a);
  });

  it('against a registry that predates instances: registers without the refused field, and deregisters without it', async () => {
    // What such a registry answers: its heartbeat schema has no "instance", and DELETE ignores query strings.
    const requests: string[] = [];
    const older = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        requests.push(`${req.method} ${req.url} ${body}`);
        res.setHeader('content-type', 'application/json');
        if (req.method === 'DELETE') return void res.writeHead(204).end();
        if ('instance' in JSON.parse(body)) {
          res.statusCode = 400;
          return void res.end(JSON.stringify({ error: { code: 'unknown_field', message: 'unknown field "instance" in the heartbeat body', field: 'instance' } }));
        }
        const t = new Date().toISOString();
        res.end(JSON.stringify({ tool: 'old', id: 'b1', url: 'http://127.0.0.1:1', source: 'registered', registeredAt: t, lastHeartbeat: t, expiresAt: t, ttl: 30, leaseSecondsLeft: 30 }));
      });
    });
    await new Promise<void>((r) => older.listen(0, '127.0.0.1', r));
    const lines: string[] = [];
    const logger = createLogger('info', { write: (l: string) => void lines.push(l) });
    const client = new RegistryClient({ registry: `http://127.0.0.1:${(older.address() as AddressInfo).port}`, token: 't' });
    const lease = new HeartbeatLoop({ client, tool: 'old', id: 'b1', url: 'http://127.0.0.1:1', ttl: 30, instance: newInstance(), logger });
    try {
      lease.start();
      await waitFor('a heartbeat without the instance', async () => requests.some((r) => r.startsWith('PUT') && !r.includes('instance')), 5000, 10);
      await lease.deregister();
      assert.equal(requests.filter((r) => r.startsWith('PUT')).length, 2, requests.join('\n'));
      assert.equal(requests.at(-1), 'DELETE /v1/tools/old/backends/b1 ', 'no ?instance= the registry would not honour');
      assert.equal(lines.filter((l) => l.includes('"event":"instance.refused"')).length, 1);
      assert.equal(lines.filter((l) => l.includes('"event":"backend.deregistered"')).length, 1);
    } finally {
      await lease.stop();
      older.close();
    }
  });

  it('isTransient: no answer, 408, 429 and 5xx are worth retrying; refusals are not', () => {
    assert.equal(isTransient(new TypeError('fetch failed')), true);
    assert.equal(isTransient(new RegistryHttpError(503, 'store_unavailable', 'x')), true);
    assert.equal(isTransient(new RegistryHttpError(429, 'x', 'x')), true);
    assert.equal(isTransient(new RegistryHttpError(200, 'invalid_response', 'x')), true);
    assert.equal(isTransient(new RegistryHttpError(401, 'invalid_token', 'x')), false);
    assert.equal(isTransient(new RegistryHttpError(409, 'port_conflict', 'x')), false);
  });

  describe('run arguments', () => {
    const env = { SWITCHBOARD_REGISTRY: 'http://10.0.0.5:8282', SWITCHBOARD_TOKEN: 'sbt_x' };

    it('splits options from the command at "--" and takes registry and token from the environment', () => {
      const o = parseRunArgs(['--tool', 'hello', '--ttl', '15', '--', 'python3', '-m', 'http.server', '--bind', '127.0.0.1'], env);
      assert.deepEqual(o, {
        tool: 'hello',
        registry: 'http://10.0.0.5:8282',
        token: 'sbt_x',
        host: '127.0.0.1',
        ttl: 15,
        fallbackPort: undefined,
        restart: false,
        restartMaxDelayMs: 30_000,
        command: 'python3',
        args: ['-m', 'http.server', '--bind', '127.0.0.1'],
        viaShell: false,
        prefix: undefined,
      });
      const flags = parseRunArgs(['--tool', 'hello', '--registry', 'http://127.0.0.1:1', '--token', 't', '--host', '[::1]', '--port', '20001', '--', 'x'], env);
      assert.equal(flags.registry, 'http://127.0.0.1:1');
      assert.equal(flags.token, 't');
      assert.equal(flags.host, '::1');
      assert.equal(flags.fallbackPort, 20001);
      const restart = parseRunArgs(['--tool', 'hello', '--restart', '--restart-max-delay', '5', '--', 'x'], env);
      assert.equal(restart.restart, true);
      assert.equal(restart.restartMaxDelayMs, 5000);
      assert.equal(parseRunArgs(['--tool', 'hello', '--restart', '--', 'x'], env).restartMaxDelayMs, 30_000);
    });

    it('one string with shell syntax after "--" runs through sh -c; several words, or one plain word, run as they are', () => {
      const line = parseRunArgs(['--tool', 'web', '--', 'python3 -m http.server $PORT'], env);
      assert.deepEqual([line.command, line.args, line.viaShell], ['/bin/sh', ['-c', 'python3 -m http.server $PORT'], true]);
      const words = parseRunArgs(['--tool', 'web', '--', 'python3', '-m', 'http.server', '$PORT'], env);
      assert.deepEqual([words.command, words.args, words.viaShell], ['python3', ['-m', 'http.server', '$PORT'], false]);
      const plain = parseRunArgs(['--tool', 'web', '--', './server'], env);
      assert.deepEqual([plain.command, plain.args, plain.viaShell], ['./server', [], false]);
      assert.equal(parseRunArgs(['--tool', 'web', '--', 'exec ./server>>log'], env).viaShell, true);
    });

    it('--token-file: the token in the file, its final newline dropped; refused beside --token, empty, or unreadable', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-token-'));
      const file = path.join(dir, 'token');
      writeFileSync(file, 'sbt_from_file\n', { mode: 0o600 });
      assert.equal(parseRunArgs(['--tool', 'web', '--token-file', file, '--', 'x'], env).token, 'sbt_from_file', 'the file wins over SWITCHBOARD_TOKEN');
      assert.equal(parseHeartbeatArgs(['--tool', 'web', '--url', 'http://127.0.0.1:1', '--token-file', file], {}).token, 'sbt_from_file');
      usage(() => parseRunArgs(['--tool', 'web', '--token', 't', '--token-file', file, '--', 'x'], env), /^--token and --token-file: give one of them$/);
      usage(() => parseRunArgs(['--tool', 'web', '--token-file', path.join(dir, 'missing'), '--', 'x'], env), /^--token-file: cannot read .*missing \(ENOENT\)$/);
      writeFileSync(file, '\n');
      usage(() => parseRunArgs(['--tool', 'web', '--token-file', file, '--', 'x'], env), /^--token-file: .* is empty$/);
      writeFileSync(file, 'two words\n');
      usage(() => parseRunArgs(['--tool', 'web', '--token-file', file, '--', 'x'], env), /must hold the token alone/);
      rmSync(dir, { recursive: true });
    });

    it('a flag without its value says which value is missing, also when the next word is another flag', () => {
      usage(() => parseRunArgs(['--tool', '--', 'x'], env), /^--tool needs a value: --tool T$/);
      usage(() => parseRunArgs(['--tool', '--token', 't', '--', 'x'], env), /^--tool needs a value: --tool T$/);
      usage(() => parseRunArgs(['--tool', 'web', '--token-file'], env), /^--token-file needs a value: --token-file PATH$/);
      usage(() => parseHeartbeatArgs(['--tool', 'web', '--url'], env), /^--url needs a value: --url URL$/);
      usage(() => parseRunArgs(['--tool', 'web', '--bogus', '--', 'x'], env), /^unknown option --bogus$/);
      // A value may still start with a dash when it is attached with "=".
      assert.equal(parseRunArgs(['--tool', 'web', '--token=-t', '--', 'x'], env).token, '-t');
    });

    it('--prefix: a sub-route path for run and heartbeat, refused when malformed', () => {
      assert.equal(parseRunArgs(['--tool', 'web', '--prefix', '/api', '--', 'x'], env).prefix, '/api');
      assert.equal(parseRunArgs(['--tool', 'web', '--', 'x'], env).prefix, undefined);
      assert.equal(parseHeartbeatArgs(['--tool', 'web', '--url', 'http://127.0.0.1:1', '--prefix', '/api/v2'], env).prefix, '/api/v2');
      usage(() => parseRunArgs(['--tool', 'web', '--prefix', 'api/', '--', 'x'], env), /^--prefix: "api\/" must be a path such as \/api/);
    });

    it('refuses a --restart-max-delay out of 1..3600 or without --restart', () => {
      usage(() => parseRunArgs(['--tool', 'hello', '--restart', '--restart-max-delay', '0', '--', 'x'], env), /--restart-max-delay: must be an integer in 1\.\.3600, got "0"/);
      usage(() => parseRunArgs(['--tool', 'hello', '--restart', '--restart-max-delay', '3601', '--', 'x'], env), /--restart-max-delay/);
      usage(() => parseRunArgs(['--tool', 'hello', '--restart-max-delay', '5', '--', 'x'], env), /only with --restart/);
    });

    it('refuses what it cannot run with a usage error naming the flag', () => {
      usage(() => parseRunArgs(['--tool', 'hello', 'node', 'x.js'], env), /after "--"/);
      usage(() => parseRunArgs(['--tool', 'hello', '--'], env), /after "--"/);
      usage(() => parseRunArgs(['--', 'x'], env), /--tool is required/);
      usage(() => parseRunArgs(['--tool', 'Hello', '--', 'x'], env), /--tool/);
      usage(() => parseRunArgs(['--tool', 'hello', '--ttl', '2.5', '--', 'x'], env), /--ttl/);
      usage(() => parseRunArgs(['--tool', 'hello', '--port', '70000', '--', 'x'], env), /--port/);
      usage(() => parseRunArgs(['--tool', 'hello', '--host', 'not a host', '--', 'x'], env), /--host/);
      usage(() => parseRunArgs(['--tool', 'hello', '--registry', 'ftp://x', '--', 'x'], env), /--registry/);
      usage(() => parseRunArgs(['--tool', 'hello', '--', 'x'], {}), /registration is not optional/);
      assert.throws(() => parseRunArgs(['--tool', 'hello', '--no-register', '--', 'x'], env), /no-register/);
    });
  });

  describe('heartbeat arguments', () => {
    it('needs --tool and an http(s) --url; --id must be a valid backend id', () => {
      const o = parseHeartbeatArgs(['--tool', 'hello', '--url', 'http://127.0.0.1:9000', '--id', 'web-1'], { SWITCHBOARD_TOKEN: 't' });
      assert.equal(o.id, 'web-1');
      assert.equal(o.registry, 'http://127.0.0.1:8282');
      usage(() => parseHeartbeatArgs(['--tool', 'hello'], { SWITCHBOARD_TOKEN: 't' }), /--url is required/);
      usage(() => parseHeartbeatArgs(['--tool', 'hello', '--url', 'tcp://x:1'], { SWITCHBOARD_TOKEN: 't' }), /--url/);
      usage(() => parseHeartbeatArgs(['--tool', 'hello', '--url', 'http://x:1', '--id', '.bad'], { SWITCHBOARD_TOKEN: 't' }), /--id/);
    });
  });
});
