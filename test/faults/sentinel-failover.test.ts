import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { SentinelCluster, command, commands } from '../support/sentinel';
import { Heartbeats, alive, fds, heartbeat, readyz, toolsWithBackends } from './helpers';
import { Traffic, echoed, get } from '../support/traffic';
import { waitFor, sleep } from '../support/wait';
import { startBackend, type Backend } from '../support/backend';

const TTL = 9;
const INTERVAL_MS = (TTL * 1000) / 3;
const STEADY = 8;
const LOST = 3;
/** A heartbeat's and a poll's round trip to the registry, on top of the heartbeat interval. */
const ROUND_TRIPS_MS = 500;

describe('Redis Sentinel failover under load (1 master, 1 replica, 3 sentinels; registry + 2 proxies)', function () {
  this.timeout(120_000);
  let cluster: SentinelCluster;
  let registry: SwitchboardProcess;
  let proxies: SwitchboardProcess[] = [];
  const backends = new Map<string, Backend>();

  before(async () => {
    cluster = await new SentinelCluster({ downAfterMs: 1000, failoverTimeoutMs: 3000 }).start();
    const env = {
      SWITCHBOARD_REDIS_SENTINELS: cluster.sentinelList,
      SWITCHBOARD_REDIS_SENTINEL_NAME: cluster.masterName,
      SWITCHBOARD_ACCESS_LOG: 'false',
    };
    // The proxies poll the store's version only every 30 s: a change that reaches them sooner came
    // through the change feed's subscription, which therefore followed the failover.
    const config = { leases: { defaultTtlSeconds: TTL }, proxy: { feedPollMs: 30_000 } };
    [registry, ...proxies] = await Promise.all([
      startProcess('registry', { env, config }),
      startProcess('proxy', { env, config }),
      startProcess('proxy', { env, config }),
    ]);
    for (let i = 0; i < STEADY; i++) backends.set(`st${i}`, await startBackend(`st${i}`));
    for (let i = 0; i < LOST; i++) backends.set(`lost${i}`, await startBackend(`lost${i}`));
    backends.set('after', await startBackend('after'));
  });
  after(async () => {
    await Promise.all([registry, ...proxies].map((p) => p?.kill()));
    await Promise.all([...backends.values()].map((b) => b.close()));
    await cluster?.stop();
  });

  async function routedEverywhere(tool: string): Promise<boolean> {
    for (const p of proxies) if ((await get(p.proxyPort, `/${tool}/`)).status !== 200) return false;
    return true;
  }

  it('kill -9 of the master: routing never stops, registrations resume, every route is back within one heartbeat interval, the feed follows', async () => {
    const steady = [...backends.keys()].filter((t) => t.startsWith('st'));
    const lost = [...backends.keys()].filter((t) => t.startsWith('lost'));
    const beats = new Heartbeats(() => registry, TTL);
    for (const t of steady) beats.add(t, backends.get(t)!.port);
    for (const t of steady) await waitFor(`${t} routed on both proxies`, () => routedEverywhere(t), 10_000);

    const master = cluster.servers[0];
    assert.equal(await cluster.currentMaster(), master);
    // Cut the replica off and keep it off (it could not authenticate to reconnect): the next writes are
    // acknowledged by the master alone, as happens to the last writes before any crash.
    await commands(master.port, [
      ['CONFIG', 'SET', 'requirepass', 'the-replica-cannot-reconnect'],
      ['CLIENT', 'KILL', 'TYPE', 'replica'],
    ]);
    for (const t of lost) assert.equal((await heartbeat(registry, t, backends.get(t)!.port, TTL)).status, 200);
    for (const t of lost) await waitFor(`${t} routed on both proxies`, () => routedEverywhere(t), 10_000);
    const versionBefore = Number((await readyz(proxies[0])).proxy.version);

    const traffic = new Traffic({
      proxies: proxies.map((p) => p.proxy),
      tools: [...steady, ...lost],
      loops: 3,
      maxPerLoop: 20_000,
      maxMs: 120_000,
      path: (tool, i) => `/${tool}/t${i}`,
      ok: echoed,
    });
    await sleep(500);
    const processes = [registry, ...proxies];
    const fdsBefore = processes.map((p) => fds(p.proc.pid!).total);
    await master.kill();
    const killedAt = Date.now();

    const promoted = await cluster.waitFailover(master, 30_000);
    const announcedAt = Date.now();
    const onPromoted = (await command(promoted.port, ['HKEYS', 'sb:backends'])) as string[];
    const lostOnFailover = lost.filter((t) => !onPromoted.includes(`${t}/b1`)).length;
    // The worst phase for the launchers of the lost tools: their next beat is due almost a whole
    // interval after the new master is announced. Until then only the proxies' memory routes them.
    const lostBeats = setTimeout(() => {
      for (const t of lost) beats.add(t, backends.get(t)!.port);
    }, INTERVAL_MS - 300);

    // Registrations resume: a renewal of a steady tool (it changes nothing routable) answers 200 again.
    const st0 = backends.get('st0')!.port;
    await waitFor('a registration to succeed after the failover', async () => (await heartbeat(registry, 'st0', st0, TTL)).status === 200, 30_000, 50);
    const resumedAt = Date.now();

    // Every route back in the store within one heartbeat interval of registrations resuming (asserted below).
    await waitFor('every route back in the store', async () => {
      const have = await toolsWithBackends(registry);
      return [...steady, ...lost].every((t) => have.has(t));
    }, 3 * INTERVAL_MS, 50);
    const allBackAt = Date.now();

    // The proxies' subscription followed the failover: a new registration reaches both well within their 30 s poll.
    assert.equal((await heartbeat(registry, 'after', backends.get('after')!.port, TTL)).status, 200);
    await waitFor('a registration after the failover routed on both proxies', () => routedEverywhere('after'), 10_000);
    await sleep(500);
    await traffic.stop();
    // Connections to the old master and to the sentinels are replaced while reconnecting: let it settle.
    const fdsAfter = await Promise.all(
      processes.map((p, i) => waitFor('descriptors back to what they were', async () => {
        const n = fds(p.proc.pid!).total;
        return n <= fdsBefore[i] + 2 ? n : null;
      }, 10_000, 100).catch(() => fds(p.proc.pid!).total)),
    );

    // Both proxies reloaded the new master's table (its version may be below the one they had).
    const storeVersion = Number(await command(promoted.port, ['GET', 'sb:version']));
    for (const p of proxies) {
      await waitFor(`proxy ${p.proxyPort} at the new master's version`, async () => Number((await readyz(p)).proxy.version) === storeVersion, 10_000);
    }

    const figures = {
      sentinelDownAfterMs: 1000,
      failoverAnnouncedMs: announcedAt - killedAt,
      registrationsResumedMs: resumedAt - killedAt,
      allRoutesBackAfterResumeMs: allBackAt - resumedAt,
      heartbeatIntervalMs: INTERVAL_MS,
      writesLostOnFailover: lostOnFailover,
      proxyVersionBefore: versionBefore,
      newMasterVersion: storeVersion,
      requestsOk: traffic.served,
      requestsFailed: traffic.failures.length,
      fdsBefore,
      fdsAfter,
    };
    console.log(`      figures: ${JSON.stringify(figures)}`);
    assert.equal(traffic.failures.length, 0, `no failed request for a live route; first ones: ${JSON.stringify(traffic.failures.slice(0, 5))}`);
    assert.ok(traffic.served > 200, `traffic really flowed (${traffic.served})`);
    assert.equal(lostOnFailover, LOST, 'the writes made after the replica was cut off were lost by the failover');
    // The lost tools' launchers beat last of all, one interval (less 300 ms) after the new master was
    // announced; their heartbeat and the test's poll each add a round trip: ROUND_TRIPS_MS.
    assert.ok(allBackAt - resumedAt <= INTERVAL_MS + ROUND_TRIPS_MS, `every route back ${allBackAt - resumedAt} ms after registrations resumed: more than one heartbeat interval (${INTERVAL_MS} ms) + ${ROUND_TRIPS_MS} ms`);
    clearTimeout(lostBeats);
    await beats.stop();
    for (const [i, p] of processes.entries()) {
      assert.ok(alive(p), 'no process died');
      // The old master's connections and their failover detectors' sentinel connections are let go.
      assert.ok(fdsAfter[i] <= fdsBefore[i] + 2, `descriptors of ${p.proc.pid}: ${fdsBefore[i]} -> ${fdsAfter[i]}`);
    }

    // Logs are flushed on a clean exit: the proxies say they resynchronised and kept the lost routes.
    for (const p of proxies) {
      assert.equal(await p.kill('SIGTERM'), 0);
      assert.match(p.output(), /redis feed reconnected; resyncing/);
    }
    assert.ok(proxies.some((p) => /"event":"feed.version_back"/.test(p.output())), 'a proxy saw the store go back and carried its routes over');
  });
});
