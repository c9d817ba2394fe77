import assert from 'node:assert/strict';
import { RedisServer } from '../support/redis-server';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { command } from '../support/redis-command';
import { adminHeaders, allocatePort, heartbeat, readyz } from './helpers';
import { waitFor } from '../support/wait';

/**
 * Redis with an append-only file and `appendfsync always` (what test/support/redis-server.ts runs): a
 * write is on disk before Redis answers it, so whatever the registry acknowledged outlives a kill -9.
 * (Redis's default `everysec` also writes the file before answering, so a crash of Redis alone loses
 * nothing in the normal case, but an OS crash or power cut can lose the last second or two.)
 */
describe('Redis with AOF (appendfsync always) killed -9 in the middle of registrations, then restarted', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let registry: SwitchboardProcess;

  before(async () => {
    redis = await new RedisServer({ appendOnly: true }).start();
    registry = await startProcess('serve', { env: { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' } });
  });
  after(async () => {
    await registry?.kill();
    await redis?.stop();
  });

  it('every registration and assignment answered 200 is there after the restart, at the same epoch', async () => {
    const backends = new Set<string>();
    const assignments = new Map<string, number>();
    let n = 0;
    let killed = false;
    // Four launchers registering and allocating as fast as they are answered; Redis dies under them.
    const launcher = async () => {
      while (!killed && n < 2000) {
        const i = n++;
        const [hb, port] = await Promise.all([
          heartbeat(registry, `aof${i}`, 30000 + i, 3600).catch(() => null),
          allocatePort(registry, `port${i}`).catch(() => null),
        ]);
        if (hb?.status === 200) backends.add(`aof${i}`);
        if (port?.status === 200) assignments.set(`port${i}`, ((await port.json()) as { port: number }).port);
        if (backends.size >= 150 && !killed) {
          killed = true;
          await redis.kill('SIGKILL');
        }
      }
    };
    const epochBefore = await command(redis.port, ['GET', 'sb:epoch']);
    assert.ok(epochBefore);
    await Promise.all([launcher(), launcher(), launcher(), launcher()]);
    assert.ok(killed, 'Redis was killed while registrations were flowing');

    await redis.start();
    await waitFor('the registry back on Redis', async () => (await readyz(registry)).registry.storeUp === true, 20_000, 100);
    const tools = (await (await fetch(`${registry.control}/v1/tools`, { headers: adminHeaders(registry) })).json()) as {
      tools: Array<{ tool: string; backends: unknown[] }>;
    };
    const have = new Set(tools.tools.filter((t) => t.backends.length > 0).map((t) => t.tool));
    const ports = (await (await fetch(`${registry.control}/v1/ports`, { headers: adminHeaders(registry) })).json()) as {
      assignments: Array<{ tool: string; port: number }>;
    };
    const held = new Map(ports.assignments.map((a) => [a.tool, a.port]));

    console.log(`      figures: ${JSON.stringify({ acknowledgedBackends: backends.size, acknowledgedAssignments: assignments.size, storedAfterRestart: have.size })}`);
    assert.deepEqual([...backends].filter((t) => !have.has(t)), [], 'no acknowledged registration was lost');
    assert.deepEqual([...assignments].filter(([t, p]) => held.get(t) !== p), [], 'no acknowledged assignment was lost or moved');
    // The table's identity survived too: proxies see the same epoch and carry on from their version.
    assert.equal(await command(redis.port, ['GET', 'sb:epoch']), epochBefore);
  });
});
