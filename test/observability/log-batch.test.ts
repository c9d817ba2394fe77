import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { TurnBatchedDestination } from '../../src/log-batch';

const turn = () => new Promise((r) => setImmediate(r));

describe('TurnBatchedDestination', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sb-logbatch-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A synchronous sonic-boom on a file, with its writes counted. */
  function boom(): { dest: ReturnType<typeof pino.destination>; writes: string[]; file: string } {
    const file = path.join(dir, 'log');
    const dest = pino.destination({ dest: file, sync: true });
    const writes: string[] = [];
    const write = dest.write.bind(dest);
    dest.write = (s: string) => {
      writes.push(s);
      return write(s);
    };
    return { dest, writes, file };
  }

  it('hands the lines of one event-loop turn over as one write, in order', async () => {
    const { dest, writes, file } = boom();
    const batched = new TurnBatchedDestination(dest);
    batched.write('a\n');
    batched.write('b\n');
    batched.write('c\n');
    assert.equal(writes.length, 0, 'nothing written within the turn');
    await turn();
    assert.deepEqual(writes, ['a\nb\nc\n']);
    batched.write('d\n');
    await turn();
    assert.deepEqual(writes, ['a\nb\nc\n', 'd\n']);
    assert.equal(readFileSync(file, 'utf8'), 'a\nb\nc\nd\n');
  });

  it('flushSync writes out the pending lines at once (process exit)', () => {
    const { dest, file } = boom();
    const batched = new TurnBatchedDestination(dest);
    batched.write('last words\n');
    batched.flushSync();
    assert.equal(readFileSync(file, 'utf8'), 'last words\n');
  });

  it("createLogger's lines logged just before process.exit() still reach stdout", function () {
    this.timeout(20_000);
    const script = "const { createLogger } = require('./src/logger'); const l = createLogger('info'); l.info({ event: 'last' }, 'bye'); process.exit(3);";
    const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8' });
    assert.equal(r.status, 3);
    const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event?: string; msg?: string });
    assert.deepEqual(lines.map((l) => [l.event, l.msg]), [['last', 'bye']]);
  });

  it('a pino logger on it writes every line, whole, once per turn', async () => {
    const { dest, writes, file } = boom();
    const logger = pino({ level: 'info' }, new TurnBatchedDestination(dest));
    for (let i = 0; i < 100; i++) logger.info({ event: 'access', i }, 'request');
    await turn();
    assert.equal(writes.length, 1);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i: number });
    assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 100 }, (_, i) => i));
  });
});
