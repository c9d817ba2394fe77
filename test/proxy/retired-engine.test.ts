import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { callApi } from '../support/api';
import { startBackend, type Backend } from '../support/backend';
import { logEvents } from '../support/logs';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { waitFor } from '../support/wait';

/** The first message a WebSocket through `url` receives. */
function firstMessage(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', (d) => {
      resolve(d.toString());
      ws.close();
    });
    ws.once('error', reject);
  });
}

// proxy.engine "http-proxy" is kept as a name so that configurations naming it still start: plain requests
// go through undici all the same, WebSocket upgrades through http-proxy as always.
describe('the retired http-proxy engine (SWITCHBOARD_PROXY_ENGINE=http-proxy)', function () {
  this.timeout(30_000);
  let p: SwitchboardProcess | null = null;
  let b: Backend | null = null;
  let wss: WebSocketServer | null = null;
  after(async () => {
    await p?.kill('SIGTERM');
    wss?.close();
    await b?.close();
  });

  it('still starts, warns once that it is retired, and serves requests and WebSocket upgrades', async () => {
    b = await startBackend('alpha');
    wss = new WebSocketServer({ server: b.server });
    wss.on('connection', (ws, req) => ws.send(`hello ${req.url}`));
    p = await startProcess('serve', { env: { SWITCHBOARD_PROXY_ENGINE: 'http-proxy' }, config: { proxy: { feedPollMs: 200 } } });
    const sb = p;

    const retired = await waitFor('the retirement warning', async () => logEvents(sb.output(), 'config.engine_retired')[0]);
    assert.equal(retired.level, 40);
    assert.match(String(retired.msg), /plain requests go through undici.*upgrades go through http-proxy/);
    assert.equal(logEvents(sb.output(), 'config.engine_retired').length, 1, 'one warning');

    assert.equal((await callApi(sb.control, sb.adminToken, 'PUT', '/v1/tools/alpha/backends/a1', { url: b.url, ttl: 30 })).status, 200);
    const body = await waitFor('alpha routed', async () => {
      const res = await fetch(`${sb.proxy}/alpha/page`, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      return res.status === 200 ? text : null;
    });
    assert.equal(body, 'alpha /alpha/page');

    assert.equal(await firstMessage(`ws://127.0.0.1:${sb.proxyPort}/alpha/socket`), 'hello /alpha/socket');
  });
});
