import { callApi } from '../support/api';
import assert from 'node:assert/strict';
import { ruleAnnotations, testRecorded } from '../observability/promtool';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { RedisServer } from '../support/redis-server';
import { toolServer, type ToolServer } from '../discovery/helpers';
import { waitFor, sleep } from '../support/wait';
import { metricValue } from '../support/metrics';

// What is lost when both the store and the registry's copy are: a registry on Redis without
// registry.snapshotPath restarts together with an empty Redis. Tools nobody heartbeats for (their launchers are
// gone) cannot come back by themselves. A proxy that lived through it counts them (switchboard_tools_lost,
// switchboard_lost_tool{tool}) until an operator routes them again. The proxy's series, recorded during the
// run, are then fed to promtool with the real alert rules: SwitchboardToolsLost must fire while they are
// lost and resolve only once they are back.

const TTL = 5;
const LOST = ['gus', 'ida'];
const KEPT = 'hal';

interface Sample {
  lost: number;
  tools: string[];
}

async function call(base: string, token: string, method: string, p: string, body?: unknown): Promise<number> {
  return (await callApi(base, token, method, p, body)).status;
}

/** The rule's summary and description as Prometheus renders them for `n` lost tools named `tools`. */
function rendered(n: number, tools: string[]): { summary: string; description: string } {
  const { summary, description } = ruleAnnotations('SwitchboardToolsLost');
  const fill = (s: string) =>
    s
      .replace(/\{\{ \$value \}\}/g, String(n))
      .replace(/\{\{ range query [^}]*\}\} \{\{ \.Labels\.tool \}\}\{\{ end \}\}/, tools.map((t) => ` ${t}`).join(''));
  return { summary: fill(summary), description: fill(description) };
}

describe('tools lost with both the store and the copy: counted until they are back, and SwitchboardToolsLost on the recorded series', function () {
  this.timeout(120_000);
  const redis = new RedisServer();
  let registry: SwitchboardProcess;
  let proxy: SwitchboardProcess;
  const servers: ToolServer[] = [];

  before(async () => {
    await redis.start();
  });
  after(async () => {
    await registry?.kill('SIGKILL');
    await proxy?.kill('SIGKILL');
    for (const s of servers) await s.close();
    await redis.stop();
  });

  it('the proxy counts the lost tools until an operator routes them again; promtool fires the alert on that series and resolves it only at 0', async () => {
    const env = { REDIS_URL: redis.url, SWITCHBOARD_ACCESS_LOG: 'false' };
    const config = { redis: { keyPrefix: 'lostalert:' }, leases: { defaultTtlSeconds: TTL }, discovery: { enabled: false }, proxy: { feedPollMs: 200 } };
    registry = await startProcess('registry', { env, config });
    proxy = await startProcess('proxy', { env, config });
    const admin = registry.adminToken;
    const url = new Map<string, string>();
    for (const tool of [...LOST, KEPT]) {
      const s = await toolServer(tool);
      servers.push(s);
      url.set(tool, s.url);
      assert.equal(await call(registry.control, admin, 'PUT', `/v1/tools/${tool}/backends/b1`, { url: s.url }), 200);
    }
    await waitFor('the proxy routes all three', async () => {
      for (const t of [...LOST, KEPT]) if ((await fetch(`${proxy.proxy}/${t}/`)).status !== 200) return false;
      return true;
    }, 15_000, 100);

    // The proxy's series, sampled as a scrape would.
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; i < 400 && sampling; i++) {
        const text = await (await fetch(`${proxy.control}/metrics`)).text();
        const tools = [...text.matchAll(/^switchboard_lost_tool\{tool="([^"]+)"\} 1$/gm)].map((m) => m[1]).sort();
        samples.push({ lost: metricValue(text, 'switchboard_tools_lost'), tools });
        await sleep(250);
      }
    })();
    await sleep(1000);

    // Registry and Redis lost together, and no copy on disk: the registry comes back knowing nothing.
    const controlPort = Number(new URL(registry.control).port);
    await registry.kill('SIGKILL');
    await redis.kill();
    await redis.start();
    registry = await startProcess('registry', { env, config, controlPort });
    // hal's launcher is alive and heartbeats again; gus and ida have nobody.
    assert.equal(await call(registry.control, admin, 'PUT', `/v1/tools/${KEPT}/backends/b1`, { url: url.get(KEPT) }), 200);
    await waitFor('the proxy counts gus and ida as lost', async () => samples.at(-1)?.tools.join(',') === LOST.join(','), 15_000, 100);
    // Past the carry-over of the old table: still lost, and unrouted.
    await sleep(TTL * 1000 + 1000);
    assert.deepEqual(samples.at(-1), { lost: 2, tools: LOST });
    assert.equal((await fetch(`${proxy.proxy}/gus/`)).status, 404);

    // The operator routes them again, one after the other.
    for (const tool of LOST) {
      assert.equal(await call(registry.control, admin, 'PUT', `/v1/tools/${tool}/backends/b1`, { url: url.get(tool) }), 200);
      await sleep(1500);
    }
    await waitFor('nothing lost any more', async () => samples.at(-1)?.lost === 0, 10_000, 100);
    await sleep(1000);
    sampling = false;
    await sampler;

    // The recorded series, one sample a minute (the run is compressed: the rule waits 2 minutes before it pages).
    const series = [
      `      - series: 'switchboard_tools_lost{instance="proxy", job="switchboard"}'\n        values: '${samples.map((s) => s.lost).join(' ')}'`,
      ...LOST.map(
        (tool) => `      - series: 'switchboard_lost_tool{instance="proxy", job="switchboard", tool="${tool}"}'\n        values: '${samples.map((s) => (s.tools.includes(tool) ? '1' : '_')).join(' ')}'`,
      ),
    ];
    const lostAt = samples.findIndex((s) => s.lost > 0);
    const bothLost = samples.map((s, i) => (s.lost === 2 && i >= lostAt + 3 ? i : -1)).filter((i) => i >= 0);
    const lastZero = samples.length - 1;
    assert.ok(lostAt > 0 && bothLost.length > 0, `samples: ${samples.map((s) => s.lost).join(' ')}`);
    const firing = rendered(2, LOST);
    const tests = [
      'rule_files: [alerts.yml]',
      'evaluation_interval: 1m',
      'tests:',
      '  - name: recorded from test/incident/lost-alert.test.ts',
      '    interval: 1m',
      '    input_series:',
      ...series,
      '    alert_rule_test:',
      `      - eval_time: ${lostAt}m`,
      '        alertname: SwitchboardToolsLost',
      '        exp_alerts: []',
      `      - eval_time: ${bothLost.at(-1)}m`,
      '        alertname: SwitchboardToolsLost',
      '        exp_alerts:',
      '          - exp_labels: { severity: critical, job: switchboard }',
      `            exp_annotations: { summary: ${JSON.stringify(firing.summary)}, description: ${JSON.stringify(firing.description)} }`,
      `      - eval_time: ${lastZero}m`,
      '        alertname: SwitchboardToolsLost',
      '        exp_alerts: []',
      '',
    ].join('\n');
    const r = await testRecorded(tests);
    console.log(`      recorded ${samples.length} samples of the proxy: lost from sample ${lostAt}, 2 lost at sample ${bothLost.at(-1)}, 0 at the end; promtool exit ${r.code}`);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${tests}`);
  });
});
