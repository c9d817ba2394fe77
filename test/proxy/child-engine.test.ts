import assert from 'node:assert/strict';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { waitFor } from '../support/wait';

// `npm run test:engine` runs this folder (and the process-level fault suites) with SWITCHBOARD_TEST_ENGINE
// set: a switchboard process started by the harness must forward with that engine, not the default.
describe('the forwarding engine of child processes', function () {
  this.timeout(30_000);
  let p: SwitchboardProcess | null = null;
  after(async () => {
    await p?.kill('SIGTERM');
  });

  it('is the one the test run asks for (SWITCHBOARD_TEST_ENGINE, else the default)', async () => {
    const want = process.env.SWITCHBOARD_TEST_ENGINE ?? 'undici';
    p = await startProcess('serve', { env: { SWITCHBOARD_ACCESS_LOG: 'false' } });
    const line = await waitFor('the loaded configuration in the log', async () => p!.output().split('\n').find((l) => l.includes('"event":"config.loaded"')));
    const config = (JSON.parse(line) as { config: { proxy: { engine: string } } }).config;
    assert.equal(config.proxy.engine, want);
  });
});
