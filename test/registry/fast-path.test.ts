import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { silentLogger } from '../../src/logger';
import { MemoryStore } from '../../src/registry/memory-store';
import { RedisStore } from '../../src/registry/redis-store';
import type { Store } from '../../src/registry/store';
import { RedisServer } from '../support/redis-server';
import { ADMIN_TOKEN, startApi, type Api } from './harness';
import { waitFor } from '../support/wait';

/**
 * The heartbeat fast path (src/registry/heartbeat-fast-path.ts) against the express route it stands in
 * front of: the same request to a server with the fast path and to one without must get the same status,
 * headers and body.
 */

interface RawReply {
  status: number;
  /** Header lines as sent, lower-cased names, without Date. */
  headers: string[];
  body: string;
}

/** One request written byte for byte on its own connection (fetch would fix up the headers we want to vary). */
function rawRequest(port: number, head: string, body: Buffer | string = ''): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(10_000, () => sock.destroy(new Error('no answer within 10 s')));
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => {
      let text = Buffer.concat(chunks).toString('utf8');
      // Expect: 100-continue gets an interim answer first.
      while (text.startsWith('HTTP/1.1 100')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers: lines.map((l) => l.replace(/^[^:]+/, (n) => n.toLowerCase())).filter((l) => !l.startsWith('date:')),
        body: text.slice(split + 4),
      });
      sock.destroy();
    });
    sock.on('connect', () => {
      sock.write(head.replace(/\n/g, '\r\n').replace(/(\r\n)*$/, '\r\nConnection: close\r\n\r\n'));
      // No half-close: node's server drops a request whose client shut its side before the answer.
      sock.write(body);
    });
  });
}

/** Answers of a successful heartbeat carry times; two servers answer them a few ms apart. */
function timeless(body: string): string {
  return body.replace(/"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/g, '"T"').replace(/"leaseSecondsLeft":\d+/, '"leaseSecondsLeft":N');
}

interface Seed {
  own: string;
  other: string;
  revoked: string;
}

/** The same state on a server: tokens for alpha and beta, a revoked one, and beta holding 127.0.0.1:47000. */
async function seed(api: Api): Promise<Seed> {
  const issue = async (tool: string) => {
    const r = await api.call('POST', `/v1/tools/${tool}/tokens`);
    assert.equal(r.status, 201, r.text);
    return r.body as { id: string; token: string };
  };
  const revoked = await issue('alpha');
  assert.equal((await api.call('DELETE', `/v1/tools/alpha/tokens/${revoked.id}`)).status, 204);
  const own = await issue('alpha');
  const other = await issue('beta');
  const port = await api.call('POST', '/v1/ports', { json: { tool: 'beta', host: '127.0.0.1' } });
  assert.equal(port.body.port, 47000, port.text);
  return { own: own.token, other: other.token, revoked: revoked.token };
}

interface Case {
  name: string;
  /** Does the fast path take it (true) or leave it to express (false)? */
  fast: boolean;
  path?: string;
  /** Header lines after the request line; `Authorization: Bearer <admin>` unless `auth` says otherwise. */
  headers?: string[];
  auth?: (s: Seed) => string | null;
  body?: Buffer | string;
  /** Content-Type; default application/json when there is a body. */
  type?: string | null;
  /** Send the body chunked instead of with Content-Length. */
  chunked?: boolean;
  status: number;
}

const URL = 'http://127.0.0.1:46000';
const good = JSON.stringify({ url: URL, ttl: 30, clientVersion: 'v1' });

const CASES: Case[] = [
  { name: 'a heartbeat', fast: true, body: good, status: 200 },
  { name: 'its renewal with the charset spelled out', fast: true, body: good, type: 'application/json; charset=utf-8', status: 200 },
  { name: 'a query string', fast: true, path: '/v1/tools/alpha/backends/x1?x=1', body: good, status: 200 },
  { name: 'the tool token of the tool', fast: true, auth: (s) => `Bearer ${s.own}`, body: good, status: 200 },
  { name: 'a chunked body', fast: true, chunked: true, body: good, status: 200 },
  { name: 'a byte order mark', fast: true, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)]), status: 200 },
  { name: 'whitespace before the object', fast: true, body: ` \n\t${good}`, status: 200 },
  { name: 'escaped path segments', fast: true, path: '/v1/tools/%61lpha/backends/x%31', body: good, status: 200 },
  { name: 'no Authorization', fast: true, auth: () => null, body: good, status: 401 },
  { name: 'Basic credentials', fast: true, auth: () => 'Basic YWRtaW46YWRtaW4=', body: good, status: 401 },
  { name: 'an unknown token', fast: true, auth: () => `Bearer sbt_${'a'.repeat(12)}_${'b'.repeat(43)}`, body: good, status: 401 },
  { name: 'a revoked token', fast: true, auth: (s) => `Bearer ${s.revoked}`, body: good, status: 401 },
  { name: 'another tool\'s token', fast: true, auth: (s) => `Bearer ${s.other}`, body: good, status: 403 },
  { name: 'no auth and a bad body: auth is checked first', fast: true, auth: () => null, body: '{', status: 401 },
  { name: 'unknown field', fast: true, body: JSON.stringify({ url: URL, colour: 'red' }), status: 400 },
  { name: 'url of the wrong type', fast: true, body: '{"url":5}', status: 400 },
  { name: 'ttl as a string', fast: true, body: JSON.stringify({ url: URL, ttl: '30' }), status: 400 },
  { name: 'ttl as a fraction', fast: true, body: JSON.stringify({ url: URL, ttl: 30.5 }), status: 400 },
  { name: 'ttl out of range', fast: true, body: JSON.stringify({ url: URL, ttl: 3601 }), status: 400 },
  { name: 'clientVersion too long', fast: true, body: JSON.stringify({ url: URL, clientVersion: 'v'.repeat(65) }), status: 400 },
  { name: 'bytes that are not UTF-8', fast: true, body: Buffer.concat([Buffer.from(`{"url":"${URL}","clientVersion":"v`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), status: 400 },
  { name: 'missing url', fast: true, body: '{"ttl":30}', status: 400 },
  { name: 'an array', fast: true, body: `["${URL}"]`, status: 400 },
  { name: 'a JSON string (strict JSON takes objects and arrays only)', fast: true, body: '"x"', status: 400 },
  { name: 'a JSON number', fast: true, body: ' 5', status: 400 },
  { name: 'null', fast: true, body: 'null', status: 400 },
  { name: 'malformed JSON', fast: true, body: `{"url": "${URL}",`, status: 400 },
  { name: 'duplicate __proto__ key', fast: true, body: `{"url":"${URL}","__proto__":{"x":1}}`, status: 400 },
  { name: 'an empty JSON body is {}', fast: true, body: '', status: 400 },
  { name: 'Content-Length 0 without a type', fast: true, body: '', type: null, status: 400 },
  { name: 'no body headers at all', fast: true, headers: [], type: null, status: 400 },
  { name: 'a JSON type but no body headers', fast: true, headers: ['Content-Type: application/json'], type: null, status: 400 },
  { name: '17 KiB with Content-Length', fast: true, body: JSON.stringify({ url: URL, clientVersion: 'x'.repeat(17 * 1024) }), status: 413 },
  { name: '17 KiB chunked', fast: true, chunked: true, body: JSON.stringify({ url: URL, clientVersion: 'x'.repeat(17 * 1024) }), status: 413 },
  { name: 'exactly 16 KiB', fast: true, body: `{"url":"${URL}"}`.padEnd(16 * 1024, ' '), status: 200 },
  { name: 'bad tool name', fast: true, path: '/v1/tools/Bad_Tool/backends/x1', body: good, status: 400 },
  { name: 'bad tool name with a tool token', fast: true, path: '/v1/tools/Bad_Tool/backends/x1', auth: (s) => `Bearer ${s.own}`, body: good, status: 403 },
  { name: 'bad backend id', fast: true, path: '/v1/tools/alpha/backends/-x', body: good, status: 400 },
  { name: 'backend id with an escaped space', fast: true, path: '/v1/tools/alpha/backends/a%20b', body: good, status: 400 },
  { name: 'backend id with an escaped slash', fast: true, path: '/v1/tools/alpha/backends/a%2Fb', body: good, status: 400 },
  { name: 'ftp url', fast: true, body: '{"url":"ftp://127.0.0.1:2121"}', status: 400 },
  { name: 'metadata address', fast: true, body: '{"url":"http://169.254.169.254"}', status: 400 },
  { name: 'public address', fast: true, body: '{"url":"http://8.8.8.8"}', status: 400 },
  { name: 'the proxy port', fast: true, body: '{"url":"http://[::1]:18080"}', status: 400 },
  { name: 'a port another tool holds', fast: true, body: '{"url":"http://127.0.0.1:47000"}', status: 409 },
  // Left to express: the answers must still agree, and the fast path must not have taken them.
  { name: 'text/plain', fast: false, body: good, type: 'text/plain', status: 415 },
  { name: 'JSON in another charset', fast: false, body: good, type: 'application/json; charset=latin1', status: 415 },
  { name: 'upper-case media type', fast: false, body: good, type: 'Application/JSON', status: 200 },
  { name: 'a body without a type', fast: false, body: good, type: null, status: 415 },
  { name: 'gzip content encoding', fast: false, headers: ['Content-Encoding: gzip'], body: good, status: 400 },
  { name: 'Expect: 100-continue', fast: false, headers: ['Expect: 100-continue'], body: good, status: 200 },
  { name: 'a trailing slash', fast: false, path: '/v1/tools/alpha/backends/x1/', body: good, status: 200 },
  { name: 'an upper-case path', fast: false, path: '/V1/TOOLS/alpha/BACKENDS/x1', body: good, status: 200 },
  { name: 'an escape that does not decode', fast: false, path: '/v1/tools/alpha/backends/%zz', body: good, status: 400 },
  { name: 'POST on the path', fast: false, body: good, status: 404 },
];

function requestOf(c: Case, s: Seed): { head: string; body: Buffer | string } {
  const method = c.name === 'POST on the path' ? 'POST' : 'PUT';
  const lines = [`${method} ${c.path ?? '/v1/tools/alpha/backends/x1'} HTTP/1.1`, 'Host: 127.0.0.1'];
  const auth = c.auth ? c.auth(s) : `Bearer ${ADMIN_TOKEN}`;
  if (auth !== null) lines.push(`Authorization: ${auth}`);
  lines.push(...(c.headers ?? []));
  if (c.body === undefined) return { head: lines.join('\n'), body: '' };
  const type = c.type === undefined ? 'application/json' : c.type;
  if (type !== null) lines.push(`Content-Type: ${type}`);
  const bytes = Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
  if (!c.chunked) {
    lines.push(`Content-Length: ${bytes.length}`);
    return { head: lines.join('\n'), body: bytes };
  }
  lines.push('Transfer-Encoding: chunked');
  // Two chunks, so the fast path has to join them.
  const half = Math.floor(bytes.length / 2);
  const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
  return { head: lines.join('\n'), body: Buffer.concat([chunk(bytes.subarray(0, half)), chunk(bytes.subarray(half)), Buffer.from('0\r\n\r\n')]) };
}

describe('heartbeat fast path', () => {
  describe('takes heartbeats', () => {
    let api: Api;
    beforeEach(async () => {
      api = await startApi({ store: new MemoryStore() });
    });
    afterEach(async () => {
      await api.close();
    });

    it('answers heartbeats itself, good and bad, and leaves other requests to express', async () => {
      const fast = api.heartbeats!;
      const put = (json: unknown, token?: string | null) => api.call('PUT', '/v1/tools/alpha/backends/a1', { json, token });
      assert.equal((await put({ url: URL })).status, 200);
      assert.equal((await put({ url: URL, ttl: 1 })).status, 400);
      assert.equal((await put({ url: URL }, null)).status, 401);
      assert.equal(fast.answered, 3);
      // Not heartbeats, or not in a form the fast path mirrors: express answers, the counter stays.
      assert.equal((await api.call('GET', '/v1/tools/alpha')).status, 200);
      assert.equal((await api.call('DELETE', '/v1/tools/alpha/backends/a1')).status, 204);
      assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1', { raw: JSON.stringify({ url: URL }), contentType: 'text/plain' })).status, 415);
      assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1/', { json: { url: URL } })).status, 200);
      assert.equal(fast.answered, 3);
      const text = await api.metrics.registry.getSingleMetricAsString('switchboard_registrations_total');
      assert.match(text, /result="created"} 2\b/);
      assert.match(text, /result="rejected"} 1\b/);
    });

    it('logs nothing per renewal at info level: the fleet\'s steady state costs no log lines', async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      await api.close();
      api = await startApi({ store: new MemoryStore(), logger: pino({ level: 'info' }, sink) });
      const put = (i: number) => api.call('PUT', `/v1/tools/alpha/backends/a${i % 4}`, { json: { url: URL } });
      for (let i = 0; i < 4; i++) assert.equal((await put(i)).status, 200);
      const registered = lines.length;
      for (let i = 0; i < 40; i++) assert.equal((await put(i)).status, 200);
      assert.equal(api.heartbeats!.answered, 44);
      assert.deepEqual(lines.slice(registered), []);
    });

    it('keeps the connection usable after a refused or oversized heartbeat', async () => {
      const big = JSON.stringify({ url: URL, clientVersion: 'x'.repeat(20_000) });
      for (const [json, status] of [[JSON.parse(big), 413], [{ url: 5 }, 400], [{ url: URL }, 200]] as const) {
        assert.equal((await api.call('PUT', '/v1/tools/alpha/backends/a1', { json })).status, status);
      }
      assert.equal(api.heartbeats!.answered, 3);
    });
  });

  for (const kind of ['memory', 'redis'] as const) {
    describe(`answers as express does (${kind} store)`, () => {
      const redis = kind === 'redis' ? new RedisServer() : null;
      let stores: Store[] = [];
      let fast: Api;
      let slow: Api;
      let seeds: { fast: Seed; slow: Seed };

      const newStore = async (): Promise<Store> => {
        const store = redis
          ? await RedisStore.connect({ url: redis.url, keyPrefix: `fp:${randomUUID()}:`, commandTimeoutMs: 500, logger: silentLogger() })
          : new MemoryStore();
        stores.push(store);
        return store;
      };

      before(async function () {
        this.timeout(20_000);
        await redis?.start();
        fast = await startApi({ store: await newStore() });
        slow = await startApi({ store: await newStore(), fastPath: false });
        seeds = { fast: await seed(fast), slow: await seed(slow) };
      });

      after(async () => {
        await fast?.close();
        await slow?.close();
        for (const s of stores) await s.close();
        stores = [];
        await redis?.stop();
      });

      // In order: successful cases change state, the same way on both servers.
      for (const c of CASES) {
        it(`${c.name} -> ${c.status}${c.fast ? '' : ' (express)'}`, async () => {
          const before = fast.heartbeats!.answered;
          const a = requestOf(c, seeds.fast);
          const b = requestOf(c, seeds.slow);
          const viaFast = await rawRequest(Number(new globalThis.URL(fast.base).port), a.head, a.body);
          const viaExpress = await rawRequest(Number(new globalThis.URL(slow.base).port), b.head, b.body);
          assert.equal(fast.heartbeats!.answered - before, c.fast ? 1 : 0, 'taken by the fast path?');
          assert.equal(viaExpress.status, c.status, viaExpress.body);
          assert.equal(viaFast.status, viaExpress.status, viaFast.body);
          assert.deepEqual(viaFast.headers, viaExpress.headers);
          assert.equal(timeless(viaFast.body), timeless(viaExpress.body));
        });
      }

      if (kind === 'redis') {
        it('store down -> 503 with Retry-After', async function () {
          this.timeout(20_000);
          await redis!.kill();
          try {
            for (const auth of [() => `Bearer ${ADMIN_TOKEN}`, (s: Seed) => `Bearer ${s.own}`]) {
              const c: Case = { name: 'store down', fast: true, body: good, auth: (s) => auth(s), status: 503 };
              const a = requestOf(c, seeds.fast);
              const b = requestOf(c, seeds.slow);
              const viaFast = await rawRequest(Number(new globalThis.URL(fast.base).port), a.head, a.body);
              const viaExpress = await rawRequest(Number(new globalThis.URL(slow.base).port), b.head, b.body);
              assert.equal(viaExpress.status, 503, viaExpress.body);
              assert.equal(viaFast.status, 503, viaFast.body);
              assert.deepEqual(viaFast.headers, viaExpress.headers);
              assert.ok(viaFast.headers.includes('retry-after: 2'), viaFast.headers.join('\n'));
              assert.equal(viaFast.body, viaExpress.body);
            }
          } finally {
            await redis!.start();
          }
          // A refused heartbeat changes nothing, later either: once the store (restarted without its data)
          // answers again, neither path's store holds the refused registration.
          for (const store of stores) {
            const snap = await waitFor('the store to answer again', async () => store.snapshot().catch(() => null), 10_000);
            assert.deepEqual([snap.backends.length, snap.assignments.length], [0, 0], JSON.stringify(snap));
          }
          for (const api of [fast, slow]) assert.equal((await api.call('GET', '/v1/tools')).status, 200, 'the registry reaches the store again');
          for (const store of stores) assert.deepEqual((await store.snapshot()).backends, [], 'nothing written once the registries reached it');
        });
      }
    });
  }
});
