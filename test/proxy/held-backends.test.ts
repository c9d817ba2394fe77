import assert from 'node:assert/strict';
import type { Backend } from '../../src/registry/types';
import { StaticRoutes, assignment, backend, rawRequest, request, startProxy, tableOf, testConfig, type Reply, type TestProxy } from './helpers';
import { waitFor, sleep } from '../support/wait';
import { deadPort, startBackend, type Backend as TestBackend } from '../support/backend';
import { capturingLogger } from '../support/logs';

// A held backend: its lease lapsed and self-preservation keeps it in the store (Store.markHeld).

function held(tool: string, id: string, url: string): Backend {
  return { ...backend(tool, id, url), held: true };
}

/** The page without what differs per request (its id). */
function pageOf(r: Reply): string {
  return r.body.split(String(r.headers['x-request-id'])).join('<id>').replace(/stopped|dead|deadpair/g, '<tool>');
}

describe('proxy: backends held by self-preservation', () => {
  let p: TestProxy;
  let lines: Array<Record<string, unknown>>;
  let answering: TestBackend;
  let live: TestBackend;
  let heldButUp: TestBackend;
  let refused: number;
  let refused2: number;

  before(async () => {
    refused = await deadPort();
    refused2 = await deadPort();
    answering = await startBackend((req, res) => res.end(`held ${req.url}`));
    live = await startBackend((req, res) => res.end(`live ${req.url}`));
    heldButUp = await startBackend((req, res) => res.end(`held-up ${req.url}`));
    const routes = new StaticRoutes(
      tableOf(
        [
          held('dead', 'd1', `http://127.0.0.1:${refused}`),
          held('deadpair', 'd1', `http://127.0.0.1:${refused}`),
          held('deadpair', 'd2', `http://127.0.0.1:${refused2}`),
          held('slow', 's1', answering.url),
          held('pref', 'h1', heldButUp.url),
          backend('pref', 'l1', live.url),
          backend('broken', 'l1', `http://127.0.0.1:${refused}`),
          held('broken', 'h1', `http://127.0.0.1:${refused2}`),
        ],
        [assignment('stopped', 40999), assignment('dead', refused)],
      ),
    );
    const captured = capturingLogger('info');
    lines = captured.lines;
    p = await startProxy(routes, testConfig({ accessLog: true, connectTimeoutMs: 300, holdMs: 200 }), { health: { baseCooloffMs: 1 }, logger: captured.logger });
  });
  after(async () => {
    await p.close();
    await Promise.all([answering.close(), live.close(), heldButUp.close()]);
  });

  it('answers the 503 not-running page, not 502, when a tool\'s only backend is held and refuses', async () => {
    for (const accept of ['text/html', 'application/json']) {
      const stopped = await request(p.port, '/stopped/x', { headers: { accept } });
      assert.equal(stopped.status, 503, 'a tool with an assignment and no backend');
      const dead = await request(p.port, '/dead/x', { headers: { accept } });
      assert.equal(dead.status, 503, dead.body);
      assert.equal(dead.headers['retry-after'], stopped.headers['retry-after']);
      assert.equal(dead.headers['content-type'], stopped.headers['content-type']);
      assert.equal(pageOf(dead), pageOf(stopped), 'the very page of a tool that is not running');
      if (accept === 'application/json') assert.equal(JSON.parse(dead.body).error.code, 'not_running');
    }
    // Every held backend refusing: still not running.
    assert.equal((await request(p.port, '/deadpair/x')).status, 503);
  });

  it('answers a WebSocket handshake to a held backend that refuses with the 503 page too', async () => {
    const head = await rawRequest(
      p.port,
      'GET /dead/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAccept: application/json\r\n\r\n',
    );
    assert.match(head, /^HTTP\/1\.1 503 /);
    assert.match(head, /"code":"not_running"/);
  });

  it('logs the outcome not_running and counts proxy errors of kind not_running, not refused', async () => {
    // Read as numbers: prom-client hands out its live value objects.
    const count = async (kind: string) => (await p.metrics.proxyErrors.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
    const before = { notRunning: await count('not_running'), refused: await count('refused') };
    const r = await request(p.port, '/dead/y');
    assert.equal(r.status, 503);
    await waitFor('the access line', () => lines.some((l) => l.event === 'access' && l.requestId === r.headers['x-request-id']), 2000, 10);
    const line = lines.find((l) => l.event === 'access' && l.requestId === r.headers['x-request-id'])!;
    assert.equal(line.outcome, 'not_running');
    assert.equal(line.status, 503);
    assert.equal((await count('not_running')) - before.notRunning, 1);
    assert.equal((await count('refused')) - before.refused, 0);
  });

  it('still serves 200 from a held backend that answers', async () => {
    const r = await request(p.port, '/slow/x');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'held /slow/x');
  });

  it('prefers a live backend over a held one', async () => {
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await request(p.port, `/pref/${i}`);
      assert.equal(r.status, 200);
      bodies.add(r.body.split(' ')[0]);
    }
    assert.deepEqual([...bodies], ['live']);
    assert.equal(heldButUp.requests, 0);
  });

  it('keeps 502 when a live backend refuses too: that tool runs and is broken', async () => {
    const r = await request(p.port, '/broken/x', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 502, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'backend_refused');
  });
});

describe('proxy: a tool whose only backend is held and refuses has no live backend', () => {
  it('holds its request (proxy.holdMs) and forwards it once a live backend registers', async () => {
    const dead = await deadPort();
    const up = await startBackend((req, res) => res.end(`back ${req.url}`));
    const routes = new StaticRoutes(tableOf([held('phoenix', 'p1', `http://127.0.0.1:${dead}`)], [assignment('phoenix', dead)]));
    const p = await startProxy(routes, testConfig({ connectTimeoutMs: 300, holdMs: 10_000 }), { health: { baseCooloffMs: 1 } });
    try {
      const pending = request(p.port, '/phoenix/x');
      // The refusal sends it to the hold queue; then the tool's launcher registers a live backend.
      let waiting = 0;
      for (let i = 0; i < 100 && waiting === 0; i++) {
        waiting = (await p.metrics.proxyHeldRequests.get()).values[0]?.value ?? 0;
        if (waiting === 0) await sleep(50);
      }
      assert.equal(waiting, 1, 'the request is held');
      routes.set(tableOf([held('phoenix', 'p1', `http://127.0.0.1:${dead}`), backend('phoenix', 'p2', up.url)], [assignment('phoenix', dead)]));
      const r = await pending;
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'back /phoenix/x');
    } finally {
      await p.close();
      await up.close();
    }
  });
});
