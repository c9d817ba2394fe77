import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { freePort } from '../support/redis-server';
import { VERSION } from '../../src/version';
import { accepts, api, getTool, launch, registryConfig, serviceInfo, spawnCli, waitForBackend, type CliProcess, toolToken, launcherSuite, portOf } from './helpers';
import { waitFor } from '../support/wait';

describe('switchboard run', function () {
  this.timeout(40_000);
  const suite = launcherSuite();
  const started = suite.started;
  let sb: SwitchboardProcess;
  before(() => {
    sb = suite.serve();
  });


  it('exports the assigned PORT, registers only once the port accepts, and gets the same port after a restart', async () => {
    const token = await toolToken(sb, 'alpha');
    const l1 = started(launch(sb.control, token, 'alpha', ['--ttl', '5'], { FIXTURE_LISTEN_DELAY_MS: '1000' }));
    // Watch the registry while the child is still starting: a listed backend must already accept connections.
    // (waitFor retries on a throw, so the finding is kept and asserted afterwards.)
    let listedBeforeAccepting = false;
    const backend = await waitFor('alpha registered', async () => {
      const b = (await getTool(sb, 'alpha'))?.backends[0];
      if (!b) return null;
      if (!(await accepts(portOf(b.url)))) listedBeforeAccepting = true;
      return b;
    }, 15_000, 20);
    assert.equal(listedBeforeAccepting, false, 'registered before the port accepted connections');
    const port = portOf(backend.url);
    const info = await serviceInfo(port);
    assert.equal(info.port, port, 'the child listens on the PORT it was given');
    assert.equal(info.sawToken, false, 'the launcher keeps its token from the child');
    const assignment = (await (await api(sb, 'POST', '/v1/ports', { tool: 'alpha', host: '127.0.0.1' })).json()) as { port: number };
    assert.equal(assignment.port, port, 'PORT is the tool\'s assignment');
    assert.equal(backend.id, `127.0.0.1-${port}`);
    assert.equal(backend.source, 'registered');
    const listenedAt = Number(/service: listening \d+ (\d+)/.exec(l1.stdout())?.[1]);
    assert.ok(Date.parse(backend.registeredAt) >= listenedAt, 'registered after the child listened');
    assert.ok(l1.events('port.ready').length === 1 && l1.events('backend.registered').length >= 1);

    const exit = await l1.stop('SIGTERM');
    assert.equal(exit.code, 0, 'a child stopped by the SIGTERM the launcher forwarded: a clean stop, 0');
    assert.equal(l1.events('child.exited')[0]?.signal, 'SIGTERM', 'the child died of the forwarded signal');
    assert.deepEqual((await getTool(sb, 'alpha'))?.backends, [], 'deregistered when the child ended');

    const l2 = started(launch(sb.control, token, 'alpha', ['--ttl', '5']));
    const again = await waitForBackend(sb, 'alpha');
    assert.equal(portOf(again.url), port, 'the assignment is reused');
    assert.equal(again.id, backend.id, 'the backend id is stable per host and port');
    assert.equal((await serviceInfo(port)).port, port);
    assert.equal((await l2.stop('SIGINT')).code, 0, 'SIGINT is forwarded, and the stop it asked for is a success');
    assert.equal(l2.events('child.exited')[0]?.signal, 'SIGINT');
  });

  it('renews the lease every ttl/3, re-creates a lost one, and reports its version per backend and in switchboard_client_versions', async () => {
    const l = started(launch(sb.control, sb.adminToken, 'beta', ['--ttl', '5']));
    const first = await waitForBackend(sb, 'beta');
    assert.equal(first.ttl, 5);
    assert.equal(first.clientVersion, VERSION);
    const seen = new Set([first.lastHeartbeat]);
    await waitFor('two more heartbeats', async () => {
      const b = (await getTool(sb, 'beta'))?.backends[0];
      if (b) seen.add(b.lastHeartbeat);
      return seen.size >= 3;
    }, 12_000, 200);
    const now = (await getTool(sb, 'beta'))!.backends[0];
    assert.equal(now.registeredAt, first.registeredAt, 'renewed, not re-created');
    assert.ok(now.leaseSecondsLeft > 0);

    // The lease disappears under the launcher (an operator, a store restarted empty): the next beat re-creates it.
    assert.equal((await api(sb, 'DELETE', `/v1/tools/beta/backends/${now.id}`)).status, 204);
    const recreated = await waitFor('the lease re-created', async () => {
      const b = (await getTool(sb, 'beta'))?.backends[0];
      return b && b.registeredAt !== first.registeredAt ? b : null;
    }, 10_000, 100);
    assert.equal(recreated.id, now.id);
    await waitFor('lease.recreated logged', async () => l.events('lease.recreated').length === 1, 5000);
    await waitFor(`switchboard_client_versions{version="${VERSION}"}`, async () => {
      const text = await (await fetch(`${sb.control}/metrics`)).text();
      return new RegExp(`^switchboard_client_versions\\{version="${VERSION.replace(/\./g, '\\.')}"\\} [1-9]`, 'm').test(text);
    }, 15_000, 250);
  });

  it('deregisters when the child exits and exits with its code', async () => {
    const l = started(launch(sb.control, sb.adminToken, 'gamma', ['--ttl', '5']));
    const b = await waitForBackend(sb, 'gamma');
    await fetch(`http://127.0.0.1:${portOf(b.url)}/exit?code=7`).catch(() => undefined);
    assert.equal((await l.exited).code, 7);
    assert.deepEqual((await getTool(sb, 'gamma'))?.backends, []);
    assert.equal(l.events('backend.deregistered').length, 1);
  });

  it('forwards SIGTERM to the child and returns the status the child chose', async () => {
    const l = started(launch(sb.control, sb.adminToken, 'delta', ['--ttl', '5'], { FIXTURE_SIGTERM_EXIT: '0' }));
    await waitForBackend(sb, 'delta');
    assert.equal((await l.stop('SIGTERM')).code, 0);
    assert.match(l.stdout(), /service: SIGTERM/);
    assert.deepEqual((await getTool(sb, 'delta'))?.backends, []);
  });

  it('falls back to the registry default lease when the registry refuses --ttl', async () => {
    const l = started(launch(sb.control, sb.adminToken, 'eta', ['--ttl', '3']));
    const b = await waitForBackend(sb, 'eta');
    assert.equal(b.ttl, 30);
    assert.equal(l.events('ttl.refused').length, 1);
    assert.equal(l.events('ttl.refused')[0].level, 50);
  });

  it('exits 1 without starting the child when the registry refuses the port request', async () => {
    const l = started(launch(sb.control, 'sbt_not-a-real-token', 'epsilon'));
    assert.equal((await l.exited).code, 1);
    assert.equal(l.events('child.started').length, 0);
    assert.equal(l.events('assignment.failed')[0]?.status, 401);
  });

  it('starting with a command that does not exist exits 127 and leaves nothing registered', async () => {
    const l = started(spawnCli(['run', '--tool', 'zeta', '--registry', sb.control, '--token', sb.adminToken, '--', '/nonexistent/command-xyz'], {}));
    assert.equal((await l.exited).code, 127);
    assert.deepEqual((await getTool(sb, 'zeta'))?.backends ?? [], []);
  });
});

describe('switchboard run while the registry is down', function () {
  this.timeout(60_000);
  let controlPort: number;
  let config: Record<string, unknown>;
  let sb: SwitchboardProcess | null = null;
  const running: CliProcess[] = [];

  before(async () => {
    controlPort = await freePort();
    config = await registryConfig();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const p of running) process.stderr.write(`launcher output:\n${p.stdout()}${p.stderr()}\n`);
  });
  after(async () => {
    await Promise.all(running.map((p) => p.cleanup()));
    await sb?.kill('SIGTERM');
  });

  it('keeps the child running, logs every failure, and registers once the registry is back (at start and mid-run)', async () => {
    const registry = `http://127.0.0.1:${controlPort}`;
    const token = 'test-admin-token-0123456789abcdef';
    // The top of the registry's block: free, and not the port the other launcher will be assigned.
    const fallbackPort = (config.ports as { max: number }).max;
    // One launcher must wait for its assignment; one is told a port to fall back on and starts at once.
    const waiting = launch(registry, token, 'outage', ['--ttl', '5']);
    const fallback = launch(registry, token, 'known', ['--ttl', '5', '--port', String(fallbackPort)]);
    running.push(waiting, fallback);

    await waitFor('two failed port requests', async () => waiting.events('assignment.failed').length >= 2, 15_000);
    assert.equal(waiting.events('child.started').length, 0, 'no child before a port is known');
    await waitFor('the fallback child', async () => (await serviceInfo(fallbackPort)).port === fallbackPort, 15_000);
    assert.equal(fallback.events('assignment.fallback').length, 1);
    await waitFor('failed heartbeats of the fallback launcher', async () => fallback.events('heartbeat.failed').length >= 1, 15_000);

    sb = await startProcess('serve', { controlPort, config, env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
    const b = await waitForBackend(sb, 'outage', 20_000);
    const port = portOf(b.url);
    const pid = (await serviceInfo(port)).pid;
    const known = await waitForBackend(sb, 'known', 20_000);
    assert.equal(portOf(known.url), fallbackPort);
    assert.ok((await getTool(sb, 'known'))!.assignments.some((a) => a.port === fallbackPort), 'the registration recreated the assignment');

    // Mid-run: the registry dies (and comes back with an empty embedded store).
    await sb.kill('SIGKILL');
    sb = null;
    const failedBefore = waiting.events('heartbeat.failed').length;
    await waitFor('failed heartbeats', async () => waiting.events('heartbeat.failed').length >= failedBefore + 2, 15_000);
    assert.equal((await serviceInfo(port)).pid, pid, 'the child kept running');
    assert.equal(waiting.proc.exitCode, null);

    sb = await startProcess('serve', { controlPort, config, env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
    const back = await waitForBackend(sb, 'outage', 20_000);
    assert.equal(portOf(back.url), port);
    assert.ok((await getTool(sb, 'outage'))!.assignments.some((a) => a.port === port), 'assignment recreated on the empty store');
    assert.ok(waiting.events('backend.registered').some((l) => Number(l.afterFailures) >= 2));
    assert.equal(portOf((await waitForBackend(sb, 'known', 20_000)).url), fallbackPort);
    assert.equal((await serviceInfo(port)).pid, pid);

    const failures = [...waiting.events('assignment.failed'), ...waiting.events('heartbeat.failed')];
    assert.ok(failures.every((l) => l.level === 40 && typeof l.err === 'string' && typeof l.retryInMs === 'number'));
    assert.ok(!waiting.stderr().includes(token) && !fallback.stderr().includes(token), 'the token is never logged');

    assert.equal((await waiting.stop('SIGTERM')).code, 0);
    assert.equal((await fallback.stop('SIGTERM')).code, 0);
    assert.deepEqual((await getTool(sb, 'outage'))?.backends, []);
    assert.deepEqual((await getTool(sb, 'known'))?.backends, []);
  });
});
