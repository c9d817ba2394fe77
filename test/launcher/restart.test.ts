import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { getTool, launch, registryConfig, serviceInfo, toolToken, waitForBackend, type BackendJson, type CliProcess, launcherSuite, portOf } from './helpers';
import { waitFor, sleep } from '../support/wait';
import { waitMetric } from '../support/metrics';
import { Traffic, byStatus } from '../support/traffic';

interface RestartsBackend extends BackendJson {
  restarts?: number;
}

/** Makes the child exit on its own (GET /exit), as a crash would. */
async function crash(b: BackendJson, code = 3): Promise<void> {
  await fetch(`http://127.0.0.1:${portOf(b.url)}/exit?code=${code}`).catch(() => undefined);
}

describe('switchboard run --restart', function () {
  this.timeout(40_000);
  const suite = launcherSuite();
  const started = suite.started;
  let sb: SwitchboardProcess;
  before(() => {
    sb = suite.serve();
  });

  it('starts a child that exited on its own again, same port, backend id and instance; the restarts count reaches the registry and switchboard_backend_restarts', async () => {
    const token = await toolToken(sb, 'crashy');
    const l = started(launch(sb.control, token, 'crashy', ['--ttl', '5', '--restart']));
    const first = (await waitForBackend(sb, 'crashy')) as RestartsBackend;
    assert.equal(first.restarts, 0, 'a launcher with --restart reports its count from the start');
    const pid1 = (await serviceInfo(portOf(first.url))).pid;
    let last = first;
    for (let n = 1; n <= 2; n++) {
      await crash(last);
      last = await waitFor(`restart ${n}`, async () => {
        const b = (await getTool(sb, 'crashy'))?.backends[0] as RestartsBackend | undefined;
        return b?.restarts === n ? b : null;
      }, 15_000);
    }
    assert.equal(last.id, first.id, 'the same backend id: the same route');
    assert.equal(last.url, first.url, 'the same port');
    assert.equal(last.instance, first.instance, 'the same run');
    assert.notEqual((await serviceInfo(portOf(last.url))).pid, pid1, 'a new child process');
    assert.equal(l.proc.exitCode, null, 'the launcher lives on');
    assert.deepEqual(l.events('child.restarting').map((e) => e.restarts), [1, 2]);
    // Between two runs the backend was deregistered (proxies hold its requests), then registered again.
    assert.ok(l.events('backend.deregistered').length >= 2);
    const text = await waitMetric(sb, 'switchboard_backend_restarts', { tool: 'crashy' }, (v) => v === 2);
    console.log(`      switchboard_backend_restarts{tool="crashy"} ${/switchboard_backend_restarts\{tool="crashy"\} (\d+)/.exec(text)?.[1]}`);
  });

  it('a SIGTERM to the launcher deregisters first, then stops the child for good (no restart) and exits with its status', async () => {
    const token = await toolToken(sb, 'stopme');
    const l = started(launch(sb.control, token, 'stopme', ['--ttl', '5', '--restart'], { FIXTURE_SIGTERM_EXIT: '0' }));
    await waitForBackend(sb, 'stopme');
    assert.equal((await l.stop('SIGTERM')).code, 0);
    assert.match(l.stdout(), /service: SIGTERM/);
    assert.deepEqual((await getTool(sb, 'stopme'))?.backends, []);
    assert.equal(l.events('child.restarting').length, 0);
    const events = l.logs().map((e) => e.event);
    assert.ok(events.indexOf('backend.deregistered') >= 0 && events.indexOf('backend.deregistered') < events.indexOf('child.exited'), `deregistered before the child exited: ${events.join(',')}`);
  });

  it('without --restart a child that exits ends the launcher, as before', async () => {
    const token = await toolToken(sb, 'once');
    const l = started(launch(sb.control, token, 'once', ['--ttl', '5']));
    const b = (await waitForBackend(sb, 'once')) as RestartsBackend;
    assert.equal(b.restarts, undefined, 'no count without --restart');
    await crash(b, 5);
    assert.equal((await l.exited).code, 5);
    assert.equal(l.events('child.restarting').length, 0);
  });
});

describe('a tool restarted through its launcher while requests flow through the proxy', function () {
  this.timeout(60_000);
  let sb: SwitchboardProcess;
  const running: CliProcess[] = [];

  before(async () => {
    // The default hold (proxy.holdMs 5000) covers the gap between the old child and the new one.
    sb = await startProcess('serve', { config: await registryConfig(), env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const p of running) process.stderr.write(`launcher output:\n${p.stdout()}${p.stderr()}\n`);
    await Promise.all(running.splice(0).map((p) => p.cleanup()));
  });
  after(async () => {
    await sb?.kill('SIGTERM');
  });

  it('SIGTERM to the launcher, then a new launcher: 0 failed requests', async () => {
    const token = await toolToken(sb, 'steady');
    const first = launch(sb.control, token, 'steady', ['--ttl', '5']);
    running.push(first);
    const before = await waitForBackend(sb, 'steady');
    await waitFor('steady routed', async () => (await fetch(`${sb.proxy}/steady/`)).status === 200, 10_000);
    // The proxy holds a request while no backend is up (proxy.holdMs): the wait for an answer outlasts it.
    const traffic = new Traffic({ proxies: [sb.proxy], tools: ['steady'], loops: 4, maxMs: 30_000, maxPerLoop: 100_000, timeoutMs: 15_000 });
    await sleep(300);
    // The normal way: the old launcher is told to stop and has stopped before the new one starts.
    assert.equal((await first.stop('SIGTERM')).code, 0);
    const second = launch(sb.control, token, 'steady', ['--ttl', '5']);
    running.push(second);
    const after = await waitForBackend(sb, 'steady');
    await sleep(300);
    await traffic.stop();
    const failed = byStatus(traffic.failures);
    const slowest = traffic.answers.reduce((m, a) => Math.max(m, a.end - a.start), 0);
    console.log(`      ${traffic.answers.length} requests across the restart, ${traffic.failures.length} failed ${JSON.stringify(failed)}, slowest ${slowest} ms`);
    assert.equal(after.id, before.id);
    assert.ok(traffic.served > 0);
    assert.equal(traffic.failures.length, 0, `failed requests by status: ${JSON.stringify(failed)}`);
  });
});
