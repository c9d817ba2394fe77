import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { SentinelCluster, command, commands } from '../support/sentinel';
import { adminHeaders, allocatePort, heartbeat } from './helpers';
import { waitFor, sleep } from '../support/wait';

const WAIT_TIMEOUT_MS = 300;
/** Registrations of the failover case, sent by four launchers at once. */
const REGISTRATIONS = 80;

interface ErrorBody {
  error: { code: string; message: string; field: string | null };
}

describe('redis.waitReplicas: a registration answers 200 only once a replica acknowledged it (Redis WAIT)', function () {
  this.timeout(120_000);
  let cluster: SentinelCluster;
  let registry: SwitchboardProcess;

  before(async () => {
    cluster = await new SentinelCluster({ downAfterMs: 1000, failoverTimeoutMs: 3000 }).start();
    registry = await startProcess('registry', {
      env: { SWITCHBOARD_REDIS_SENTINELS: cluster.sentinelList, SWITCHBOARD_REDIS_SENTINEL_NAME: cluster.masterName },
      config: { redis: { waitReplicas: 1, waitTimeoutMs: WAIT_TIMEOUT_MS } },
    });
  });
  after(async () => {
    await registry?.kill();
    await cluster?.stop();
  });

  const port = (i: number) => 30000 + i;
  async function onServer(serverPort: number, tool: string): Promise<boolean> {
    return ((await command(serverPort, ['HEXISTS', 'sb:backends', `${tool}/b1`])) as number) === 1;
  }

  it('a 200 means the replica has the registration and the assignment already', async () => {
    const [master, replica] = cluster.servers;
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const res = await heartbeat(registry, `acked${i}`, port(i), 30);
      latencies.push(performance.now() - t0);
      assert.equal(res.status, 200, await res.text());
      // Read from the replica right after the answer: WAIT returned only once it had applied the write.
      assert.ok(await onServer(replica.port, `acked${i}`), `acked${i} is on the replica when the API answers`);
    }
    const alloc = await allocatePort(registry, 'ported');
    assert.equal(alloc.status, 200);
    const { port: p } = (await alloc.json()) as { port: number };
    assert.equal(await command(replica.port, ['HEXISTS', 'sb:assign', `127.0.0.1:${p}`]), 1, 'the assignment is on the replica');
    assert.ok(await onServer(master.port, 'acked0'));
    latencies.sort((a, b) => a - b);
    console.log(`      figures: ${JSON.stringify({ registrationWithWaitP50Ms: Math.round(latencies[10] * 10) / 10, maxMs: Math.round(latencies[19] * 10) / 10 })}`);
  });

  it('replica stopped: 503 not_replicated with Retry-After, which means "applied on the master, not acknowledged: a failover now may lose it"', async () => {
    const [master, replica] = cluster.servers;
    replica.pause();
    try {
      const res = await heartbeat(registry, 'unacked', port(100), 30);
      assert.equal(res.status, 503);
      assert.ok(res.headers.get('retry-after'), 'with Retry-After');
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'not_replicated');
      assert.match(body.error.message, /applied on the Redis master/);
      // Not a refusal: the write is on the master, and a retry is a harmless renewal.
      assert.ok(await onServer(master.port, 'unacked'));
      const tool = await fetch(`${registry.control}/v1/tools/unacked`, { headers: adminHeaders(registry) });
      assert.equal(tool.status, 200);
    } finally {
      replica.resume();
    }
    await waitFor('registrations acknowledged again once the replica is back', async () => (await heartbeat(registry, 'unacked', port(100), 30)).status === 200, 10_000, 100);
  });

  it('every registration answered 200 survives a kill -9 of the master and the failover; of those answered 503 some are lost', async () => {
    const [master] = cluster.servers;
    const acked: string[] = [];
    const unacked: string[] = [];
    const other: number[] = [];
    let storeDownRetries = 0;
    let inFlightAtKill = 0;
    let sentAfterKill = 0;
    let killedAt = 0;
    let n = 0;
    // Four launchers registering as fast as they are answered, each retrying a registration the registry
    // could not write (503 store_unavailable) as a launcher does. At CUT the replica is cut off for good (it
    // cannot authenticate to reconnect), so from then on the master alone has the writes; at KILL the master
    // is killed while the other launchers' registrations are in flight, and the rest are sent during the
    // failover and answered by the new master.
    const CUT = 30;
    const KILL = 50;
    const launcher = async () => {
      while (n < REGISTRATIONS) {
        const i = n++;
        const tool = `w${i}`;
        if (i === KILL) {
          await master.kill();
          killedAt = Date.now();
        }
        const sentAt = Date.now();
        if (killedAt) sentAfterKill++;
        for (let attempt = 0; attempt < 300; attempt++) {
          const res = await heartbeat(registry, tool, port(200 + i), 30);
          const code = res.status === 503 ? ((await res.json()) as ErrorBody).error.code : '';
          if (code === 'store_unavailable') {
            storeDownRetries++;
            await sleep(100);
            continue;
          }
          if (res.status === 200) acked.push(tool);
          else if (code === 'not_replicated') unacked.push(tool);
          else other.push(res.status);
          break;
        }
        if (killedAt && sentAt < killedAt) inFlightAtKill++;
        if (i === CUT) {
          await commands(master.port, [
            ['CONFIG', 'SET', 'requirepass', 'the-replica-cannot-reconnect'],
            ['CLIENT', 'KILL', 'TYPE', 'replica'],
          ]);
        }
      }
    };
    await Promise.all([launcher(), launcher(), launcher(), launcher()]);
    const promoted = await cluster.waitFailover(master);
    const present = new Set(((await command(promoted.port, ['HKEYS', 'sb:backends'])) as string[]).map((k) => k.split('/')[0]));

    const figures = { registrations: REGISTRATIONS, acked: acked.length, unacked: unacked.length, unackedSurvived: unacked.filter((t) => present.has(t)).length, inFlightAtKill, sentAfterKill, storeDownRetries };
    console.log(`      figures: ${JSON.stringify(figures)}`);
    assert.deepEqual(other, [], 'every registration was answered 200 or 503 not_replicated in the end');
    assert.equal(acked.length + unacked.length, REGISTRATIONS);
    assert.ok(inFlightAtKill >= 1 && sentAfterKill >= 1, 'the registrations straddle the kill: some in flight when it happened, some sent after it');
    assert.ok(acked.length >= CUT / 2 && unacked.length >= (KILL - CUT) / 2, `both kinds of answer happened: ${acked.length} 200, ${unacked.length} 503`);
    assert.deepEqual(acked.filter((t) => !present.has(t)), [], 'no acknowledged registration was lost');
    // 503 not_replicated means "may be lost", not "lost": one whose write reached the replica just before
    // the cut survives, the ones only the master had died with it.
    assert.ok(unacked.some((t) => !present.has(t)), 'some registrations answered 503 were lost with the master');

    // The new master has no replica left: writes go on being applied but are answered 503 until one joins.
    const res = await waitFor('the registry to reach the new master', async () => {
      const r = await heartbeat(registry, 'alone', port(400), 30);
      return r.status === 503 && ((await r.json()) as ErrorBody).error.code === 'not_replicated' ? r : null;
    }, 30_000, 100);
    assert.ok(res.headers.get('retry-after'));
    assert.ok(await onServer(promoted.port, 'alone'));
  });
});
