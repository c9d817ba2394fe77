import assert from 'node:assert/strict';
import type { SwitchboardProcess } from '../support/process';
import { accepts, api, getTool, launch, serviceInfo, serviceOf, spawnCli, waitForBackend, toolToken, launcherSuite, portOf } from './helpers';
import { waitFor } from '../support/wait';
import { logEvents } from '../support/logs';
import { Traffic } from '../support/traffic';

/**
 * Requests to `tool` through the proxy, one after another, until stop() or `max` were sent: a failure is
 * an answer other than 200 or one from another process than `pid`.
 */
function traffic(sb: SwitchboardProcess, tool: string, pid: number, max = 5000): Traffic {
  return new Traffic({ proxies: [sb.proxy], tools: [tool], maxPerLoop: max, maxMs: 30_000, ok: (a) => a.status === 200 && serviceOf(a.body)?.pid === pid });
}

/**
 * Launchers own what they register: two runs of one tool on one host, and an overlapping deploy. Fallback
 * discovery is off here, so a route that disappeared is not healed behind the tests' back.
 */
describe('switchboard run: a launcher removes only the lease it owns', function () {
  this.timeout(60_000);
  const suite = launcherSuite(() => ({ discovery: { enabled: false } }));
  const started = suite.started;
  let sb: SwitchboardProcess;
  before(() => {
    sb = suite.serve();
  });


  /** A registry log line written after everything before it: absence of a line before it is then proven. */
  async function logMarker(name: string): Promise<void> {
    const port = (await (await api(sb, 'POST', '/v1/ports', { tool: name, host: '127.0.0.1' })).json()) as { port: number };
    assert.equal((await api(sb, 'PUT', `/v1/tools/${name}/backends/m1`, { url: `http://127.0.0.1:${port.port}` })).status, 200);
    await waitFor(`the registry's log line for ${name}`, async () => logEvents(sb.output(), 'registration').some((l) => l.tool === name), 10_000, 100);
  }

  it('a second launcher of a running tool exits 1 naming the tool, host:port and backend, and the first stays registered and routed', async () => {
    const token = await toolToken(sb, 'twin');
    const first = started(launch(sb.control, token, 'twin', ['--ttl', '5']));
    const b = await waitForBackend(sb, 'twin');
    const port = portOf(b.url);
    const pid = (await serviceInfo(port)).pid;
    assert.match(b.instance ?? '', /^[a-z2-7]{20}$/, 'the launcher registers with its instance');
    await waitFor('twin routed', async () => (await fetch(`${sb.proxy}/twin/`)).status === 200, 10_000, 100);

    const second = started(launch(sb.control, token, 'twin', ['--ttl', '5']));
    const requests = traffic(sb, 'twin', pid);
    const exit = await second.exited;
    await requests.stop();
    assert.equal(exit.code, 1);
    const taken = second.events('port.taken');
    assert.equal(taken.length, 1, second.stderr());
    assert.equal(taken[0].level, 50);
    assert.equal(taken[0].msg, `port 127.0.0.1:${port} is taken by a running instance of tool "twin" (backend 127.0.0.1-${port}); not starting a second one`);
    assert.equal(second.events('child.started').length, 0, 'the second child is never started');
    assert.equal(second.events('backend.registered').length + second.events('backend.deregistered').length, 0);

    const now = (await getTool(sb, 'twin'))!.backends;
    assert.deepEqual(now.map((x) => [x.id, x.instance, x.registeredAt]), [[b.id, b.instance, b.registeredAt]], 'the first run still owns its lease');
    assert.deepEqual(requests.failures, [], 'every request while the second launcher ran reached the first child');
    assert.ok(requests.answers.length > 0);
    assert.equal(first.proc.exitCode, null);
    console.log(`      ${requests.answers.length} requests through the proxy while the second launcher ran: all 200 from the first child`);
  });

  it('a launcher whose child fails before accepting connections deregisters nothing, also when a lease of its backend id is live', async () => {
    // The lease an earlier run left (its process gone, the lease not lapsed yet); nothing listens on the port.
    const assignment = (await (await api(sb, 'POST', '/v1/ports', { tool: 'stale', host: '127.0.0.1' })).json()) as { port: number };
    const id = `127.0.0.1-${assignment.port}`;
    const put = await api(sb, 'PUT', `/v1/tools/stale/backends/${id}`, { url: `http://127.0.0.1:${assignment.port}`, ttl: 60, instance: 'earlier-run-0001' });
    assert.equal(put.status, 200);

    const failing = started(spawnCli(['run', '--tool', 'stale', '--registry', sb.control, '--token', await toolToken(sb, 'stale'), '--', process.execPath, '-e', 'process.exit(4)'], {}));
    assert.equal((await failing.exited).code, 4);
    assert.equal(failing.events('child.started').length, 1, 'the child did start, and failed');
    for (const e of ['port.ready', 'backend.registered', 'backend.deregistered', 'deregister.not_owner', 'deregister.failed']) {
      assert.equal(failing.events(e).length, 0, `launcher event ${e}`);
    }
    assert.deepEqual((await getTool(sb, 'stale'))!.backends.map((x) => [x.id, x.instance]), [[id, 'earlier-run-0001']]);
    await logMarker('stale-marker');
    assert.deepEqual(logEvents(sb.output(), 'deregistration').filter((l) => l.tool === 'stale'), [], 'no DELETE reached the registry');
  });

  it('an overlapping deploy: the new run takes the lease over by its heartbeat, the old run stopped afterwards leaves it routed', async () => {
    const token = await toolToken(sb, 'deploy');
    const old = started(launch(sb.control, token, 'deploy', ['--ttl', '5'], { FIXTURE_SIGTERM_DRAIN: '1' }));
    const first = await waitForBackend(sb, 'deploy');
    const port = portOf(first.url);
    const oldPid = (await serviceInfo(port)).pid;

    // The old run is told to stop; its child stops listening and drains, the old launcher waits for it.
    old.proc.kill('SIGTERM');
    await waitFor('the old child stopped listening', async () => !(await accepts(port)), 10_000, 50);
    const fresh = started(launch(sb.control, token, 'deploy', ['--ttl', '5']));
    const taken = await waitFor('the new run owns the lease', async () => {
      const b = (await getTool(sb, 'deploy'))?.backends[0];
      return b && b.instance !== first.instance ? b : null;
    }, 15_000, 50);
    assert.equal(taken.id, first.id, 'same host and port: the same backend id');
    assert.notEqual(taken.registeredAt, first.registeredAt, 'a takeover is a new registration');
    const newPid = (await serviceInfo(port)).pid;
    assert.notEqual(newPid, oldPid);
    await waitFor('deploy routed to the new child', async () => {
      const res = await fetch(`${sb.proxy}/deploy/`);
      return res.status === 200 && ((await res.json()) as { pid: number }).pid === newPid;
    }, 10_000, 50);

    // While the old child drains, its launcher renews nothing: over two renewals of the new run (longer
    // than the old run's heartbeat interval) the lease never goes back to the old instance.
    const owners = new Set<string>();
    const beats = new Set<string>();
    await waitFor('two renewals by the new run', async () => {
      const b = (await getTool(sb, 'deploy'))?.backends[0];
      if (b) {
        owners.add(b.instance ?? '-');
        if (b.instance === taken.instance) beats.add(b.lastHeartbeat);
      }
      return beats.size >= 3;
    }, 15_000, 50);
    assert.deepEqual([...owners], [taken.instance], 'the stopping run took the lease back');

    // The old child finishes draining: the old launcher must leave the new run's lease. It deregistered its
    // own lease on SIGTERM, before the new run existed (the stop signal is forwarded after the deregistration),
    // so it has nothing left to remove when its child exits.
    process.kill(oldPid, 'SIGUSR2');
    const requests = traffic(sb, 'deploy', newPid);
    const exit = await old.exited;
    await requests.stop();
    assert.equal(exit.code, 0);
    assert.equal(old.events('backend.deregistered').length, 1, old.stderr());
    assert.ok(Number(old.events('backend.deregistered')[0].time) <= Date.parse(taken.registeredAt), 'deregistered before the new run registered');
    assert.equal(old.events('deregister.not_owner').length, 0);
    assert.deepEqual((await getTool(sb, 'deploy'))!.backends.map((b) => [b.id, b.instance]), [[taken.id, taken.instance]]);
    const after = traffic(sb, 'deploy', newPid, 200);
    await after.finished();
    assert.deepEqual([...requests.failures, ...after.failures], [], 'every request reached the new child');
    assert.ok(logEvents(sb.output(), 'deregistration').some((l) => l.tool === 'deploy' && l.result === 'removed' && l.instance === first.instance));

    // The new run's own deregistration still works.
    assert.equal((await fresh.stop('SIGTERM')).code, 0);
    assert.deepEqual((await getTool(sb, 'deploy'))!.backends, []);
    assert.equal(fresh.events('backend.deregistered').length, 1);
    console.log(`      ${requests.answers.length + after.answers.length} requests through the proxy from the old child's exit to 200 after the old launcher's: all 200 from the new child`);
  });
});
