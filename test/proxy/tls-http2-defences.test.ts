import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { StaticRoutes, backend, tableOf } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, makePair, writePair, type Pair } from '../support/certificates';
import { startBackend, type Backend } from '../support/backend';
import { FLAG, FRAME, RawH2, frame, hpack, requestBlock } from '../support/h2-frames';
import { h2Once, h2Request, h2Session } from '../support/http2-client';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { metricValue } from '../support/metrics';
import { sleep, waitFor } from '../support/wait';

const NAME = 'site.example.test';
const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;

/** A RST_STREAM payload: its error code. */
function rstPayload(code: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(code);
  return b;
}

describe('proxy HTTPS listener: HTTP/2 limits and DoS defences', function () {
  this.timeout(30_000);
  let echo: Backend;
  let p: TlsProxy;
  let logs: CapturedLogs;
  let pair: Pair;
  /** Cuts the answers /echo/hold holds open. */
  const held: Array<() => void> = [];

  before(async () => {
    echo = await startBackend((req, res) => {
      if (req.url === '/echo/hold') {
        res.writeHead(200);
        res.write('held');
        held.push(() => res.end());
        return;
      }
      if (req.url === '/echo/large') return void res.end(Buffer.alloc(4 << 20, 120));
      req.resume();
      req.on('end', () => res.end(`echo ${req.url}`));
    });
    pair = await makePair([NAME]);
    const files = writePair(certDir(), 'site', pair);
    logs = capturingLogger('info');
    p = await startTlsProxy(
      new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)])),
      {
        cert: files.cert,
        key: files.key,
        http2: { maxConcurrentStreams: 10, maxHeaderListBytes: 4096, maxResetsPerSecond: 20, maxControlFramesPerSecond: 50, maxInvalidFrames: 20, maxRejectedStreams: 20 },
      },
      { proxy: { keepAliveTimeoutMs: 1000, responseTimeoutMs: 1500, requestTimeoutMs: 3000 }, logger: logs.logger },
    );
  });
  after(async () => {
    for (const h of held) h();
    await p.close();
    await echo.close();
  });

  const opts = () => ({ servername: NAME, ca: pair.cert });
  const attacker = () => RawH2.connect(p.tlsPort, opts());
  const closedFor = async (reason: string) =>
    waitFor(`the session closed for ${reason}`, async () => metricValue(await p.metrics.registry.metrics(), 'switchboard_proxy_http2_sessions_closed_total', { reason }) === 1);

  /** Another client on the same port, served while the attack goes on. */
  async function stillServed(): Promise<void> {
    const r = await h2Once(p.tlsPort, '/echo/victim', opts());
    assert.equal(r.status, 200);
    assert.equal(r.body, 'echo /echo/victim');
  }

  /** Sends `batch()` every few ms, at most `times`, until the server closes the connection; answers how many went. */
  async function flood(c: RawH2, times: number, batch: (i: number) => Buffer): Promise<number> {
    let i = 0;
    for (; i < times && !c.closed && c.goawayCode === null; i++) {
      if (!c.write(batch(i))) break;
      if (i % 10 === 9) await sleep(5);
    }
    return i;
  }

  it('advertises its stream, header list and window limits in SETTINGS, and no extended CONNECT', async () => {
    const s = await h2Session(p.tlsPort, opts());
    try {
      await waitFor('the server settings', () => s.remoteSettings.maxConcurrentStreams === 10);
      assert.equal(s.remoteSettings.maxHeaderListSize, 4096);
      assert.equal(s.remoteSettings.initialWindowSize, 65_535);
      assert.notEqual(s.remoteSettings.enableConnectProtocol, true);
    } finally {
      s.close();
    }
  });

  it('closes a session that resets streams faster than maxResetsPerSecond (rapid reset) with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const before = echo.requests;
    const c = await attacker();
    const [sent] = await Promise.all([
      flood(c, 300, (i) => Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, requestBlock(`/echo/r${i}`, NAME)), frame(FRAME.RST_STREAM, 0, 2 * i + 1, rstPayload(NGHTTP2_CANCEL))])),
      stillServed(),
    ]);
    await waitFor('the GOAWAY', () => c.goawayCode !== null || c.closed);
    assert.equal(c.goawayCode, NGHTTP2_ENHANCE_YOUR_CALM);
    await waitFor('the socket closed', () => c.closed);
    await closedFor('resets');
    assert.ok(sent < 300, `the attacker got ${sent} streams out before it was cut`);
    assert.ok(echo.requests - before < 100, `${echo.requests - before} requests reached the backend`);
    const line = logs.events('proxy.http2_session_closed').find((l) => l.reason === 'resets');
    assert.ok(line, 'a proxy.http2_session_closed line');
    await stillServed();
  });

  it('closes a session that floods CONTINUATION frames after an unfinished HEADERS', async () => {
    const c = await attacker();
    c.write(frame(FRAME.HEADERS, 0, 1, requestBlock('/echo/c', NAME)));
    await Promise.all([flood(c, 5000, () => frame(FRAME.CONTINUATION, 0, 1, hpack.literal('x-a', 'b'))), stillServed()]);
    await waitFor('the socket closed', () => c.closed);
    await closedFor('continuation');
  });

  it('closes a session that floods PING frames (past maxControlFramesPerSecond)', async () => {
    const c = await attacker();
    await Promise.all([flood(c, 2000, () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))), stillServed()]);
    await waitFor('the socket closed', () => c.closed);
    assert.equal(c.goawayCode, NGHTTP2_ENHANCE_YOUR_CALM);
    await closedFor('control_frames');
  });

  it('closes a session that floods SETTINGS without reading the acknowledgements', async () => {
    const c = await attacker();
    await sleep(50);
    c.stopReading();
    await Promise.all([flood(c, 2000, () => frame(FRAME.SETTINGS, 0, 0)), stillServed()]);
    c.readAgain();
    await waitFor('the socket closed', () => c.closed);
    const text = await p.metrics.registry.metrics();
    const closed = ['control_frames', 'flood'].map((reason) => metricValue(text, 'switchboard_proxy_http2_sessions_closed_total', { reason }));
    assert.ok(closed[0] + closed[1] >= 2, `closed for control_frames ${closed[0]}, flood ${closed[1]} (one before: the PING flood)`);
  });

  it('closes a session that churns PRIORITY frames', async () => {
    const c = await attacker();
    const priority = (i: number) => {
      const b = Buffer.alloc(5);
      b.writeUInt32BE(2 * ((i + 7) % 500) + 1);
      b[4] = i % 256;
      return frame(FRAME.PRIORITY, 0, 2 * (i % 500) + 1, b);
    };
    await Promise.all([flood(c, 3000, priority), stillServed()]);
    await waitFor('the socket closed', () => c.closed);
    assert.equal(c.goawayCode, NGHTTP2_ENHANCE_YOUR_CALM);
  });

  it('closes a session that sends empty DATA frames, or invalid header blocks, past maxInvalidFrames', async () => {
    const empty = await attacker();
    empty.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('/echo/e', NAME, [hpack.literal('content-length', '10')])));
    await Promise.all([flood(empty, 2000, () => frame(FRAME.DATA, 0, 1)), stillServed()]);
    await waitFor('the socket closed', () => empty.closed);
    await closedFor('invalid_frames');
    const invalid = await attacker();
    const upper = (i: number) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, requestBlock('/echo/i', NAME, [hpack.literal('X-Upper-Case', '1')]));
    await Promise.all([flood(invalid, 500, upper), stillServed()]);
    await waitFor('the socket closed', () => invalid.closed);
    const text = await p.metrics.registry.metrics();
    assert.equal(metricValue(text, 'switchboard_proxy_http2_sessions_closed_total', { reason: 'invalid_frames' }), 2);
  });

  it('refuses header lists past maxHeaderListBytes, and closes a session that repeats an HPACK bomb', async () => {
    const s = await h2Session(p.tlsPort, opts());
    try {
      assert.equal((await h2Request(s, '/echo/fits', { headers: { 'x-fill': 'y'.repeat(3000) } })).status, 200);
      await assert.rejects(h2Request(s, '/echo/too-big', { headers: { 'x-fill': 'y'.repeat(5000) } }), /NGHTTP2_ENHANCE_YOUR_CALM|stream error|NGHTTP2_PROTOCOL_ERROR/);
    } finally {
      s.close();
    }
    // A 4000-byte value put in the HPACK table once, then referenced a hundred times per block with one
    // byte each: 400 KB of headers from 100 bytes on the wire.
    const c = await attacker();
    c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('/echo/b', NAME, [hpack.literal('x-big', 'v'.repeat(3500), true)])));
    const bomb = (i: number) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 3, requestBlock('/echo/b', NAME, Array<Buffer>(100).fill(hpack.indexed(62))));
    await Promise.all([flood(c, 500, bomb), stillServed()]);
    await waitFor('the socket closed', () => c.closed);
  });

  it('refuses streams past maxConcurrentStreams, and closes a session that keeps opening them past maxRejectedStreams', async () => {
    const c = await attacker();
    const open = (i: number) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, requestBlock('/echo/hold', NAME));
    const refused = () => c.received(FRAME.RST_STREAM).filter((f) => f.payload.readUInt32BE(0) === NGHTTP2_REFUSED_STREAM);
    // 15 at once: 10 served (their answers held open), 5 refused.
    for (let i = 0; i < 15; i++) c.write(open(i));
    await waitFor('the answers of 10 and the refusal of 5', () => c.received(FRAME.HEADERS).length === 10 && refused().length === 5);
    await Promise.all([flood(c, 60, (i) => open(15 + i)), stillServed()]);
    await waitFor('the socket closed', () => c.closed);
    assert.equal(c.received(FRAME.HEADERS).length, 10, 'never more than 10 streams answered at once');
  });

  it('cuts a stream whose client reads nothing (zero window) after proxy.responseTimeoutMs, then closes its idle session', async () => {
    const s = await h2Session(p.tlsPort, { ...opts(), settings: { initialWindowSize: 0 } });
    const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
    const stream = s.request({ ':path': '/echo/large' });
    const ended = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1)));
    stream.on('error', () => undefined);
    await stillServed();
    assert.notEqual(await ended, NGHTTP2_NO_ERROR, 'the stream was reset, not ended as if complete');
    assert.equal(await goaway, NGHTTP2_NO_ERROR);
    await waitFor('the session closed', () => s.closed || s.destroyed);
  });

  it('resets a stream whose body has not all come after proxy.requestTimeoutMs', async () => {
    const s = await h2Session(p.tlsPort, opts());
    try {
      const stream = s.request({ ':path': '/echo/slow-body', ':method': 'POST' }, { endStream: false });
      stream.on('error', () => undefined);
      const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1)));
      // A byte every 500 ms: never silent for proxy.bodyIdleTimeoutMs, never done; bounded by the test's own count.
      let sent = 0;
      const trickle = setInterval(() => {
        if (stream.closed || ++sent > 20) return clearInterval(trickle);
        stream.write('x');
      }, 500);
      try {
        assert.equal(await closed, NGHTTP2_CANCEL);
      } finally {
        clearInterval(trickle);
      }
      assert.ok(sent < 20, `${sent} bytes before the reset`);
    } finally {
      s.close();
    }
  });

  it('closes a session that completes its handshake and sends nothing after proxy.keepAliveTimeoutMs', async () => {
    const c = await attacker();
    await waitFor('the GOAWAY', () => c.goawayCode !== null);
    assert.equal(c.goawayCode, NGHTTP2_NO_ERROR);
    await waitFor('the socket closed', () => c.closed);
  });
});
