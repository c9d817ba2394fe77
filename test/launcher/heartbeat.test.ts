import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { freePort } from '../support/redis-server';
import { VERSION } from '../../src/version';
import { accepts, api, getTool, registryConfig, SERVICE, spawnCli, waitForBackend, type CliProcess } from './helpers';
import { waitFor } from '../support/wait';
import { metricValue } from '../support/metrics';

describe('switchboard heartbeat, and clients old and new', function () {
  this.timeout(40_000);
  let sb: SwitchboardProcess;
  let service: ChildProcess | null = null;
  const procs: CliProcess[] = [];
  const started = (p: CliProcess) => {
    procs.push(p);
    return p;
  };

  before(async () => {
    sb = await startProcess('serve', { config: await registryConfig(), env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.cleanup()));
    service?.kill('SIGKILL');
    await sb?.kill('SIGTERM');
  });

  it('keeps a service started some other way registered, and deregisters on SIGTERM with exit 0', async () => {
    const port = await freePort();
    service = spawn(process.execPath, [SERVICE], { env: { PORT: String(port) }, stdio: 'ignore' });
    await waitFor('the service', () => accepts(port));
    // Registry and token from the environment, as an operator's unit file would set them.
    const hb = started(spawnCli(['heartbeat', '--tool', 'legacy', '--url', `http://127.0.0.1:${port}`, '--ttl', '5'], {
      SWITCHBOARD_REGISTRY: sb.control,
      SWITCHBOARD_TOKEN: sb.adminToken,
    }));
    const first = await waitForBackend(sb, 'legacy');
    assert.equal(first.id, `127.0.0.1-${port}`);
    assert.equal(first.clientVersion, VERSION);
    await waitFor('a renewal', async () => (await getTool(sb, 'legacy'))?.backends[0]?.lastHeartbeat !== first.lastHeartbeat, 10_000, 200);
    assert.equal((await hb.stop('SIGTERM')).code, 0);
    assert.deepEqual((await getTool(sb, 'legacy'))?.backends, []);
    assert.equal(hb.events('backend.deregistered').length, 1);
    assert.ok(!hb.stderr().includes(sb.adminToken));
  });

  it('takes --id, and SIGINT ends it the same way', async () => {
    const port = await freePort();
    const p = started(spawnCli(['heartbeat', '--tool', 'legacy2', '--url', `http://127.0.0.1:${port}`, '--id', 'web-1', '--registry', sb.control, '--token', sb.adminToken], {}));
    const b = await waitForBackend(sb, 'legacy2');
    assert.equal(b.id, 'web-1');
    assert.equal(b.ttl, 30, 'no --ttl: the registry default');
    assert.equal((await p.stop('SIGINT')).code, 0);
    assert.deepEqual((await getTool(sb, 'legacy2'))?.backends, []);
  });

  it('accepts the minimal body an older client sends ({"url"} only): 200, default ttl, version "unknown"', async () => {
    const port = await freePort();
    const res = await api(sb, 'PUT', '/v1/tools/oldclient/backends/b1', { url: `http://127.0.0.1:${port}` });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.ttl, 30);
    assert.equal(body.clientVersion, undefined);
    const listed = (await getTool(sb, 'oldclient'))!.backends[0];
    assert.equal(listed.ttl, 30);
    assert.equal(listed.clientVersion, undefined);
    // Next to a current client, both versions show in one scrape.
    const fresh = await api(sb, 'PUT', '/v1/tools/newclient/backends/b1', { url: `http://127.0.0.1:${port + 1}`, clientVersion: VERSION });
    assert.equal(fresh.status, 200);
    await waitFor('both versions in switchboard_client_versions', async () => {
      const text = await (await fetch(`${sb.control}/metrics`)).text();
      return metricValue(text, 'switchboard_client_versions', { version: 'unknown' }) >= 1 &&
        metricValue(text, 'switchboard_client_versions', { version: VERSION }) >= 1;
    }, 15_000, 250);
  });
});
