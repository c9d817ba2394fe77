import assert from 'node:assert/strict';
import { waitFor } from '../support/wait';
import { accepts, getTool, launch, launcherSuite, serviceInfo, toolToken, waitForBackend, portOf } from './helpers';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A launcher killed outright (SIGKILL, the OOM killer) must not leave its child holding the tool's port:
 * its watchdog stops the child. And a child left running all the same (its watchdog killed too) is named
 * by the next launcher, which registers nothing and starts nothing.
 */
describe('switchboard run: a launcher killed outright', function () {
  this.timeout(60_000);
  const { serve, started } = launcherSuite(() => ({ discovery: { enabled: false } }));

  it('its watchdog stops the child and frees the port; the next launcher starts its own child there and registers it', async () => {
    const sb = serve();
    const token = await toolToken(sb, 'kept');
    const first = started(launch(sb.control, token, 'kept', ['--ttl', '5']));
    const b = await waitForBackend(sb, 'kept');
    const port = portOf(b.url);
    const childPid = (await serviceInfo(port)).pid;

    first.proc.kill('SIGKILL');
    await first.exited;
    await waitFor('the child stopped', async () => !alive(childPid) && !(await accepts(port)), 20_000, 50);
    const [gone] = await waitFor('the watchdog\'s line', async () => (first.events('launcher.gone').length ? first.events('launcher.gone') : null), 5000, 50);
    assert.equal(gone.childPid, childPid);
    assert.equal(gone.tool, 'kept');

    const second = started(launch(sb.control, token, 'kept', ['--ttl', '5']));
    const taken = await waitFor('the new run owns the lease', async () => {
      const now = (await getTool(sb, 'kept'))?.backends[0];
      return now && now.instance !== b.instance ? now : null;
    }, 20_000, 50);
    assert.equal(portOf(taken.url), port);
    const newPid = (await serviceInfo(port)).pid;
    assert.notEqual(newPid, childPid);
    assert.equal(second.events('port.taken').length, 0);
    assert.equal((await second.stop('SIGTERM')).code, 0);
  });

  it('an orphan on the port (watchdog killed too) is named with its pid and port, and neither registered nor joined by a second child', async () => {
    const sb = serve();
    const token = await toolToken(sb, 'stray');
    const first = started(launch(sb.control, token, 'stray', ['--ttl', '5']));
    const b = await waitForBackend(sb, 'stray');
    const port = portOf(b.url);
    const launcherPid = first.proc.pid!;
    const orphanPid = await first.abandon();
    assert.ok(await accepts(port), 'the orphan keeps the port');

    const second = started(launch(sb.control, token, 'stray', ['--ttl', '5']));
    assert.equal((await second.exited).code, 1);
    const [taken] = second.events('port.taken');
    assert.equal(taken?.level, 50, second.stderr());
    assert.equal(taken.holder, 'orphan');
    assert.equal(taken.holderPid, orphanPid);
    assert.equal(taken.launcherPid, launcherPid);
    assert.equal(
      taken.msg,
      `port 127.0.0.1:${port} (the assignment of tool "stray") is held by pid ${orphanPid} (${process.execPath}), an orphan: started by a launcher ` +
        `(pid ${launcherPid}) that is gone; not starting a second child: stop it (kill ${orphanPid}), then start the launcher again`,
    );
    assert.equal(second.events('child.started').length, 0);
    assert.equal(second.events('backend.registered').length, 0);
    const backends = (await getTool(sb, 'stray'))?.backends ?? [];
    assert.ok(backends.every((x) => x.instance === b.instance), 'no lease of the second run');
    assert.equal((await serviceInfo(port)).pid, orphanPid, 'the orphan is left alone');
  });
});
