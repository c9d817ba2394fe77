// Fairness of the response relay: streams whose clients read as fast as loopback allows take turns with
// each other and with other requests (src/proxy/relay-turns.ts), rather than filling each turn of the
// event loop with as much as the sockets give. Counted in bytes and turns, never in time.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { StaticRoutes, backend, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend, type Backend } from '../support/backend';
import { sleep } from '../support/wait';

const KiB = 1024;
const STREAMS = 20;
const STREAM_BYTES = 16 * 1024 * KiB;
/** The default setting is the one tested. */
const RELAY_BYTES_PER_TURN = testConfig().proxy.relayBytesPerTurn;
/**
 * What one turn may relay: the budget, overshot by what the stream resumed in it relays before it reaches
 * the end of a read (one more read of 64 KiB) and by the part it was in. Without the bound a turn relays
 * megabytes here (up to 32 reads of a socket in one poll, for each stream that reads), and a small request
 * waits through several.
 */
const TURN_BOUND = RELAY_BYTES_PER_TURN + 2 * 64 * KiB;
/** The turns a small request to another tool may take: its request, its backend's answer, and some slack. */
const TURNS_FOR_ONE_REQUEST = 8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sumWritten = (sockets: Set<net.Socket>) => [...sockets].reduce((n, s) => n + s.bytesWritten, 0);

/** What the proxy's client sockets were handed in each turn of this process's event loop, while `until` runs. */
function bytesPerTurn(sockets: Set<net.Socket>, until: Promise<unknown>): Promise<number[]> {
  return new Promise((resolve) => {
    const turns: number[] = [];
    let done = false;
    void until.finally(() => (done = true));
    let last = sumWritten(sockets);
    const tick = () => {
      const now = sumWritten(sockets);
      if (now > last) turns.push(now - last);
      last = now;
      if (done) resolve(turns);
      else setImmediate(tick);
    };
    setImmediate(tick);
  });
}

describe('proxy relay fairness', function () {
  this.timeout(60_000);
  const routes = new StaticRoutes();
  let p: TestProxy;
  let small: Backend;
  let peers: ChildProcess;
  const sockets = new Set<net.Socket>();

  before(async () => {
    small = await startBackend((_req, res) => res.end('x'.repeat(100)));
    peers = fork(path.join(__dirname, 'fixtures', 'stream-peers.ts'), [], {
      execArgv: ['--require', 'tsx/cjs'],
      env: { ...process.env, STREAM_BYTES: String(STREAM_BYTES) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const { port } = await new Promise<{ port: number }>((resolve) => peers.once('message', (m) => resolve(m as { port: number })));
    routes.table = tableOf([backend('a', 'a1', `http://127.0.0.1:${port}`), backend('b', 'b1', small.url)]);
    p = await startProxy(routes, testConfig({ responseTimeoutMs: 30_000, requestTimeoutMs: 60_000 }));
    p.proxy.server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
  });
  after(async () => {
    peers.send('exit');
    await p.close();
    await small.close();
  });

  it('streams to fast readers take turns: every byte in order, and a small request is answered while they run', async () => {
    const ended = new Promise<{ bytes: number[]; inOrder: boolean[] }>((resolve) => peers.once('message', (m) => resolve(m as { bytes: number[]; inOrder: boolean[] })));
    peers.send({ proxyPort: p.port, path: '/a/', streams: STREAMS });
    const turns = bytesPerTurn(sockets, ended);
    // Small requests to the other tool while the streams run, one at a time, each with the stream bytes
    // the proxy relayed between its sending and its answer.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const during: number[] = [];
    let streaming = true;
    void ended.then(() => (streaming = false));
    await sleep(50);
    while (streaming) {
      const before = sumWritten(sockets);
      const status = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: p.port, path: '/b/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
      if (!streaming) break;
      assert.equal(status, 200);
      during.push(sumWritten(sockets) - before);
    }
    agent.destroy();
    const { bytes, inOrder } = await ended;
    const perTurn = (await turns).sort((a, b) => a - b);
    console.log(`      ${during.length} small requests while ${STREAMS} streams ran; stream bytes relayed during one: median ${Math.round(median(during) / KiB)} KiB; ${perTurn.length} turns relayed, bytes a turn: median ${Math.round(median(perTurn) / KiB)} KiB, p99 ${Math.round(perTurn[Math.floor(perTurn.length * 0.99)] / KiB)} KiB, max ${Math.round(perTurn[perTurn.length - 1] / KiB)} KiB`);
    assert.deepEqual(bytes, new Array(STREAMS).fill(STREAM_BYTES), 'every stream whole');
    assert.deepEqual(inOrder, new Array(STREAMS).fill(true), 'every byte in order');
    assert.ok(during.length >= 5, `small requests answered while the streams ran: ${during.length}`);
    assert.ok(median(perTurn) <= TURN_BOUND, `a turn relays at most ${TURN_BOUND} bytes (median): ${median(perTurn)}`);
    const mayWait = TURNS_FOR_ONE_REQUEST * TURN_BOUND;
    assert.ok(median(during) <= mayWait, `a small request waits for at most ${mayWait} stream bytes (median): ${median(during)}`);
  });
});
