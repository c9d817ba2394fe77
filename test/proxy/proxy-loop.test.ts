import assert from 'node:assert/strict';
import { StaticRoutes, backend, rawRequest, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';
import { startBackend, type Backend } from '../support/backend';
import { waitFor } from '../support/wait';

/** A proxy with its access log captured, and the client connections it accepted counted. */
interface Counted {
  p: TestProxy;
  logs: CapturedLogs;
  connections: number;
}

/** The Via settings of one proxy of a loop. */
type ViaSettings = { via?: string; maxVia?: number };

async function countedProxy(routes: StaticRoutes, settings: ViaSettings): Promise<Counted> {
  const logs = capturingLogger('info');
  const p = await startProxy(routes, testConfig({ accessLog: true, ...settings }), { logger: logs.logger });
  const c: Counted = { p, logs, connections: 0 };
  p.proxy.server.on('connection', () => c.connections++);
  return c;
}

/** Two proxies whose tool `loop` points at each other: any request for it goes round between them. */
async function loopPair(a: ViaSettings, b: ViaSettings): Promise<{ a: Counted; b: Counted; close(): Promise<void> }> {
  const routesA = new StaticRoutes();
  const routesB = new StaticRoutes();
  const pa = await countedProxy(routesA, a);
  const pb = await countedProxy(routesB, b);
  routesA.set(tableOf([backend('loop', 'to-b', `http://127.0.0.1:${pb.p.port}`)]));
  routesB.set(tableOf([backend('loop', 'to-a', `http://127.0.0.1:${pa.p.port}`)]));
  return { a: pa, b: pb, close: async () => void (await Promise.all([pa.p.close(), pb.p.close()])) };
}

/** The access lines of both proxies once `n` have been written (each is written as its exchange closes). */
async function accessLines(pair: { a: Counted; b: Counted }, n: number) {
  return waitFor(`${n} access lines`, () => {
    const lines = [...pair.a.logs.events('access'), ...pair.b.logs.events('access')];
    return lines.length >= n ? lines : null;
  });
}

async function loopErrors(pair: { a: Counted; b: Counted }): Promise<number> {
  let n = 0;
  for (const c of [pair.a, pair.b]) n += metricValue(await c.p.metrics.registry.metrics(), 'switchboard_proxy_errors_total', { kind: 'loop_detected' });
  return n;
}

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/**
 * The cases: the deployment's pseudonym and proxy.maxVia of each proxy, and how many times a request
 * reaches a proxy before one refuses it. With one pseudonym each hop adds to the same count: refused at
 * the arrival that finds it maxVia + 1 times, the (maxVia + 2)th. With two, each proxy counts its own
 * entries only, every other hop: the one refusing is the first to see its own maxVia + 1 times.
 */
const LOOPS = [
  { name: 'one pseudonym, proxy.maxVia 1 (the default)', a: {}, b: {}, arrivals: 3 },
  { name: 'one pseudonym, proxy.maxVia 3', a: { maxVia: 3 }, b: { maxVia: 3 }, arrivals: 5 },
  { name: 'proxy.maxVia 0: no Switchboard in front of another', a: { maxVia: 0 }, b: { maxVia: 0 }, arrivals: 2 },
  { name: 'two deployments (proxy.via "edge" and "core"), proxy.maxVia 1', a: { via: 'edge' }, b: { via: 'core' }, arrivals: 5 },
];

describe('proxy loops (Via)', function () {
  this.timeout(20_000);

  for (const c of LOOPS) {
    it(`two proxies forwarding a tool to each other, ${c.name}: 508 after ${c.arrivals} arrivals, no more connections, requests or access lines; counted and access-logged`, async () => {
      const pair = await loopPair(c.a, c.b);
      try {
        const r = await request(pair.a.p.port, '/loop/x', { headers: { accept: 'application/json' } });
        assert.equal(r.status, 508, r.body);
        assert.equal(JSON.parse(r.body).error.code, 'loop_detected');
        assert.equal(JSON.parse(r.body).error.tool, 'loop');
        const lines = await accessLines(pair, c.arrivals);
        assert.equal(lines.length, c.arrivals, 'one access line per arrival');
        // The client's connection and one per hop, at most: no retry, no connection per attempt.
        assert.ok(pair.a.connections + pair.b.connections <= c.arrivals, `${pair.a.connections + pair.b.connections} connections`);
        assert.ok(pair.a.p.proxy.upstreamSockets() + pair.b.p.proxy.upstreamSockets() <= c.arrivals - 1, 'backend connections left');
        assert.deepEqual(lines.map((l) => l.status), Array(c.arrivals).fill(508));
        assert.deepEqual(lines.filter((l) => l.outcome === 'loop_detected').length, 1, 'refused by one proxy; the others relayed its answer');
        assert.equal(await loopErrors(pair), 1);
        const html = await request(pair.a.p.port, '/loop/x', { headers: { accept: 'text/html' } });
        assert.equal(html.status, 508);
        assert.match(html.body, /<h1>508 Loop detected<\/h1>/);
        assert.ok(html.body.includes(String(html.headers['x-request-id'])), 'names the request id');
      } finally {
        await pair.close();
      }
    });
  }

  it('a WebSocket handshake going round two proxies: 508 after as many arrivals, every socket closed', async () => {
    const pair = await loopPair({}, {});
    try {
      const answer = await rawRequest(pair.a.p.port, `GET /loop/ws HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n${UPGRADE}\r\n`);
      assert.match(answer, /^HTTP\/1\.1 508 /);
      assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code, 'loop_detected');
      const lines = await accessLines(pair, 3);
      assert.equal(lines.length, 3);
      assert.ok(pair.a.connections + pair.b.connections <= 3, `${pair.a.connections + pair.b.connections} connections`);
      assert.deepEqual(lines.map((l) => [l.status, l.outcome]), [
        [508, 'loop_detected'],
        [508, 'loop_detected'],
        [508, 'loop_detected'],
      ]);
      await waitFor('every backend socket closed', () => pair.a.p.proxy.upstreamSockets() + pair.b.p.proxy.upstreamSockets() === 0, 5000, 20);
    } finally {
      await pair.close();
    }
  });

  describe('Via', () => {
    let echo: Backend;
    let inner: TestProxy;
    let front: TestProxy;
    let named: TestProxy;

    before(async () => {
      echo = await startBackend((req, res) => res.end(JSON.stringify({ via: req.headers.via ?? null })));
      inner = await startProxy(new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)])));
      front = await startProxy(new StaticRoutes(tableOf([backend('echo', 'inner', `http://127.0.0.1:${inner.port}`)])));
      named = await startProxy(new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)])), testConfig({ via: 'edge-7' }));
    });
    after(async () => {
      for (const p of [inner, front, named]) await p.close();
      await echo.close();
    });

    const viaSeen = async (port: number, via?: string): Promise<string | null> => {
      const r = await request(port, '/echo/', { headers: via === undefined ? {} : { via } });
      assert.equal(r.status, 200, r.body);
      return JSON.parse(r.body).via;
    };

    it('appends <version> <proxy.via> to the Via a request carries, through a Switchboard in front of another (no loop)', async () => {
      assert.equal(await viaSeen(inner.port), '1.1 switchboard');
      assert.equal(await viaSeen(named.port), '1.1 edge-7');
      assert.equal(await viaSeen(front.port, '1.0 fred, 1.1 p.example (Apache/1.1)'), '1.0 fred, 1.1 p.example (Apache/1.1), 1.1 switchboard, 1.1 switchboard');
      const raw = await rawRequest(inner.port, 'GET /echo/ HTTP/1.0\r\nVia: 1.1 cache\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 200 /);
      assert.equal(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).via, '1.1 cache, 1.0 switchboard');
    });

    it('counts the pseudonym in every spelling of a Via entry, and nothing else: past proxy.maxVia it is a loop', async () => {
      const loops = ['1.1 switchboard, 1.1 switchboard', 'HTTP/1.1 SwitchBoard,1.0   switchboard (Switchboard/1)', '1.1 switchboard,\t2 switchboard, 1.1 other'];
      for (const via of loops) {
        const r = await request(inner.port, '/echo/', { headers: { via, accept: 'application/json' } });
        assert.equal(r.status, 508, via);
        assert.equal(JSON.parse(r.body).error.code, 'loop_detected');
      }
      // Two Via lines are one list (RFC 9110 5.3).
      const twoLines = await rawRequest(inner.port, 'GET /echo/ HTTP/1.1\r\nHost: x\r\nVia: 1.1 switchboard\r\nVia: 1.1 switchboard\r\nConnection: close\r\n\r\n');
      assert.match(twoLines, /^HTTP\/1\.1 508 /);
      for (const via of ['1.1 switchboard', '1.1 switchboard-2, 1.1 xswitchboard', '1.1 other (switchboard, switchboard)', '1.1 edge-7, 1.1 edge-7']) {
        assert.equal(await viaSeen(inner.port, via), `${via}, 1.1 switchboard`, via);
      }
      assert.equal((await request(named.port, '/echo/', { headers: { via: '1.1 edge-7, 1.1 EDGE-7' } })).status, 508);
    });
  });
});
