import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/wait';
import { api, getTool, launcherSuite, SERVICE, serviceInfo, spawnCli, toolToken, waitForBackend, portOf } from './helpers';

/** A command line for `sh`: the node running these tests, on the fixture service, then `rest`. */
function serviceLine(rest: string): string {
  return `'${process.execPath}' '${SERVICE}' ${rest}`;
}

/**
 * What an operator types in the first hour: the command as one string with $PORT in it, a command that
 * listens on a port of its own choosing, and a token kept out of the process list.
 */
describe('switchboard run: the command line', function () {
  this.timeout(40_000);
  const { serve, started } = launcherSuite();

  async function assignedPort(tool: string): Promise<number> {
    return ((await (await api(serve(), 'POST', '/v1/ports', { tool, host: '127.0.0.1' })).json()) as { port: number }).port;
  }

  it("one string after \"--\" runs through sh -c, so a quoted '$PORT' in it is the assigned port", async () => {
    const sb = serve();
    const token = await toolToken(sb, 'shell');
    const l = started(spawnCli(['run', '--tool', 'shell', '--registry', sb.control, '--token', token, '--', serviceLine('$PORT')], {}));
    const b = await waitForBackend(sb, 'shell');
    const port = portOf(b.url);
    assert.equal(port, await assignedPort('shell'));
    assert.equal((await serviceInfo(port)).port, port, 'the fixture listens on the port its argument named');
    assert.equal(l.events('launcher.start')[0]?.viaShell, true);
    assert.equal(l.events('port.mismatch').length, 0);
    // The stop reaches the program sh started, and is a clean one.
    assert.equal((await l.stop('SIGTERM')).code, 0);
    assert.deepEqual((await getTool(sb, 'shell'))?.backends, []);
  });

  it('a child listening on another port is named, with both ports, long before the 30 s "not accepting yet"', async () => {
    const sb = serve();
    const token = await toolToken(sb, 'astray');
    const wrong = await freePort();
    // What `-- python3 -m http.server $PORT` becomes once the operator's shell expanded $PORT: its own default.
    const l = started(spawnCli(['run', '--tool', 'astray', '--registry', sb.control, '--token', token, '--', process.execPath, SERVICE, String(wrong)], {}));
    const [mismatch] = await waitFor('port.mismatch', async () => (l.events('port.mismatch').length ? l.events('port.mismatch') : null), 15_000, 50);
    const port = await assignedPort('astray');
    assert.equal(mismatch.level, 40);
    assert.equal(mismatch.port, port);
    assert.deepEqual(mismatch.listening, [`127.0.0.1:${wrong}`]);
    assert.match(String(mismatch.msg), new RegExp(`^child listens on port ${wrong} \\(127\\.0\\.0\\.1:${wrong}\\), not on its assigned port ${port}: the command must listen on \\$PORT`));
    assert.equal(l.events('port.waiting').length, 0, 'said before the launcher gave up waiting quietly');
    assert.deepEqual((await getTool(sb, 'astray'))?.backends ?? [], [], 'nothing registered');
    assert.equal((await l.stop('SIGTERM')).code, 0);
    assert.equal(l.events('port.mismatch').length, 1, 'said once');
  });

  it('a process the child started counts as the child: a listener two levels down on another port is named too', async () => {
    const sb = serve();
    const token = await toolToken(sb, 'nested');
    const wrong = await freePort();
    // sh runs the service and then waits to run `true`: the listener is sh's child, not the launcher's.
    const l = started(spawnCli(['run', '--tool', 'nested', '--registry', sb.control, '--token', token, '--', serviceLine(`${wrong}; true`)], {}));
    const [mismatch] = await waitFor('port.mismatch', async () => (l.events('port.mismatch').length ? l.events('port.mismatch') : null), 15_000, 50);
    assert.deepEqual(mismatch.listening, [`127.0.0.1:${wrong}`]);
    const shPid = l.events('child.started')[0]?.childPid as number;
    const servicePid = (await serviceInfo(wrong)).pid;
    assert.notEqual(servicePid, shPid, 'the listener is not the launcher\'s own child');
    assert.equal(Number(readFileSync(`/proc/${servicePid}/stat`, 'utf8').split(') ')[1].split(' ')[1]), shPid, "it is sh's child");
    // SIGTERM goes to the child's process group: sh and the service both end.
    assert.equal((await l.stop('SIGTERM')).code, 0);
    await waitFor('the grandchild gone', async () => !(await serviceInfo(wrong).then(() => true, () => false)), 10_000, 50);
  });

  it('--token-file: the launcher registers with the token in the file, which is not on its command line', async () => {
    const sb = serve();
    const token = await toolToken(sb, 'filed');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sb-token-')), 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const l = started(spawnCli(['run', '--tool', 'filed', '--registry', sb.control, '--token-file', file, '--', process.execPath, SERVICE], {}));
    await waitForBackend(sb, 'filed');
    const cmdline = readFileSync(`/proc/${l.proc.pid}/cmdline`, 'utf8');
    assert.ok(cmdline.includes(file) && !cmdline.includes(token), 'ps shows the file, never the token');
    assert.ok(!l.stderr().includes(token));
    assert.equal((await l.stop('SIGTERM')).code, 0);
  });
});
