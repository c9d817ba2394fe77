import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { silentLogger } from '../../src/logger';
import { RedisStore, type RedisStoreOptions } from '../../src/registry/redis-store';
import { StoreUnavailableError } from '../../src/registry/store';
import type { ChangeEvent, UpsertBackendInput } from '../../src/registry/types';
import { freePort, RedisServer } from '../support/redis-server';
import { waitFor, sleep } from '../support/wait';
import { capturingLogger } from '../support/logs';

const HOST = '127.0.0.1';

function input(over: Partial<UpsertBackendInput> & { tool: string; id: string; port: number }): UpsertBackendInput {
  return { url: `http://${HOST}:${over.port}`, host: HOST, ttl: 30, source: 'registered', now: Date.now(), ...over };
}

/** Rejects with the call's own error, or with "hung" when it has not settled within `ms`. */
async function settleWithin<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('RedisStore', function () {
  this.timeout(20_000);

  const opened: RedisStore[] = [];
  const raw: Redis[] = [];

  async function open(server: RedisServer, over: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
    const store = await RedisStore.connect({
      url: server.url,
      keyPrefix: `t:${randomUUID()}:`,
      commandTimeoutMs: 500,
      logger: silentLogger(),
      ...over,
    });
    opened.push(store);
    return store;
  }

  function rawClient(server: RedisServer): Redis {
    const client = new Redis(server.url, { lazyConnect: false });
    client.on('error', () => undefined);
    raw.push(client);
    return client;
  }

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    for (const c of raw.splice(0)) c.disconnect();
  });

  describe('on a steady server', () => {
    const server = new RedisServer();
    before(async () => {
      await server.start();
    });
    after(async () => {
      await server.stop();
    });

    it('never hands one host:port to two tools when two stores allocate concurrently', async () => {
      const keyPrefix = `t:${randomUUID()}:`;
      const a = await open(server, { keyPrefix });
      const b = await open(server, { keyPrefix });
      const range = { min: 30000, max: 30049 };
      // Every tool asks through both stores at once, as two registry processes would.
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => [
          a.allocatePort(`tool${i}`, HOST, range, 1),
          b.allocatePort(`tool${i}`, HOST, range, 1),
        ]).flat(),
      );
      const portOf = new Map<string, number>();
      let created = 0;
      for (const r of results) {
        assert.ok(r.ok, JSON.stringify(r));
        if (r.created) created++;
        const seen = portOf.get(r.assignment.tool);
        if (seen !== undefined) assert.equal(r.assignment.port, seen, `${r.assignment.tool} got two ports`);
        portOf.set(r.assignment.tool, r.assignment.port);
      }
      assert.equal(created, 50);
      assert.equal(new Set(portOf.values()).size, 50);
      const listed = await b.listAssignments();
      assert.equal(listed.length, 50);
      for (const x of listed) assert.equal(portOf.get(x.tool), x.port);
      assert.deepEqual(await a.allocatePort('late', HOST, range, 1), { ok: false, reason: 'range_exhausted' });
    });

    it('stores records that read back with their exact shape and 13-digit times', async () => {
      const store = await open(server);
      const now = 1_732_540_123_456;
      const r = await store.upsertBackend(input({ tool: 'alpha', id: 'a/1', port: 5001, ttl: 7, now }));
      assert.ok(r.ok);
      const expected = {
        tool: 'alpha',
        id: 'a/1',
        url: `http://${HOST}:5001`,
        source: 'registered',
        registeredAt: now,
        lastHeartbeat: now,
        expiresAt: now + 7000,
        ttl: 7,
      };
      assert.deepEqual(r.backend, expected);
      assert.ok(!('clientVersion' in r.backend));
      const snap = await store.snapshot();
      assert.deepEqual(snap.backends, [expected]);
      assert.deepEqual(snap.assignments, [{ tool: 'alpha', host: HOST, port: 5001, createdAt: now }]);
      assert.deepEqual(await store.expiredLeases(now + 7000, 10), [{ tool: 'alpha', id: 'a/1', expiresAt: now + 7000, ttl: 7 }]);
    });

    it('runs its scripts again after SCRIPT FLUSH (the NOSCRIPT path)', async () => {
      const store = await open(server);
      assert.ok((await store.allocatePort('alpha', HOST, { min: 7000, max: 7010 }, 1)).ok);
      await rawClient(server).script('FLUSH');
      const again = await store.allocatePort('beta', HOST, { min: 7000, max: 7010 }, 1);
      assert.ok(again.ok);
      assert.equal(again.assignment.port, 7001);
      assert.equal(await store.removeBackend('alpha', 'none'), false);
    });

    it('ignores and logs malformed feed messages and keeps delivering', async () => {
      const { logger, lines } = capturingLogger();
      const keyPrefix = `t:${randomUUID()}:`;
      const store = await open(server, { keyPrefix, logger });
      const events: ChangeEvent[] = [];
      await store.subscribe((e) => events.push(e), () => undefined);
      const publisher = rawClient(server);
      await publisher.publish(`${keyPrefix}changes`, 'not json');
      await publisher.publish(`${keyPrefix}changes`, JSON.stringify({ epoch: 'e', version: 'x', changes: [] }));
      await store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, 1);
      await waitFor('the real event', () => events.length >= 1, 8000, 20);
      assert.equal(events.length, 1);
      assert.equal(events[0].changes[0].kind, 'assignment.upsert');
      assert.equal(lines.filter((l) => l.msg === 'ignoring malformed change event').length, 2);
    });

    it('snapshots a table far larger than one command timeout allows for', async () => {
      const keyPrefix = `t:${randomUUID()}:`;
      // 50,000 backends (~10 MB) written straight into the hash: reading them back takes far longer than 20 ms.
      const writer = rawClient(server);
      const count = 50_000;
      for (let start = 0; start < count; start += 1000) {
        const fields: string[] = [];
        for (let i = start; i < start + 1000; i++) {
          const url = `http://10.0.${i >> 8 & 255}.${i & 255}:${20000 + (i % 1000)}`;
          fields.push(`tool${i % 500}/inst-${i}`, JSON.stringify({
            tool: `tool${i % 500}`, id: `inst-${i}`, url, source: 'registered',
            registeredAt: 1_732_540_000_000, lastHeartbeat: 1_732_540_000_000, expiresAt: 1_732_540_030_000, ttl: 30,
          }));
        }
        await writer.hset(`${keyPrefix}backends`, ...fields);
      }
      const store = await open(server, { keyPrefix, commandTimeoutMs: 20 });
      const snap = await store.snapshot();
      assert.equal(snap.backends.length, count);
      assert.equal(new Set(snap.backends.map((b) => b.id)).size, count);
      assert.equal(snap.backends[0].expiresAt, 1_732_540_030_000);
    });

    it('keeps separate tables under separate key prefixes', async () => {
      const a = await open(server);
      const b = await open(server);
      assert.ok((await a.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 }))).ok);
      assert.equal(await b.backendCount(), 0);
      assert.notEqual((await a.version()).epoch, (await b.version()).epoch);
    });
  });

  describe('through Sentinel', () => {
    const master = new RedisServer();
    let sentinel: ChildProcess | null = null;
    let sentinelPort = 0;
    let dir = '';

    before(async () => {
      await master.start();
      sentinelPort = await freePort();
      // Sentinel rewrites its config file, so it gets its own writable copy.
      dir = mkdtempSync(path.join(os.tmpdir(), 'sb-sentinel-'));
      const conf = path.join(dir, 'sentinel.conf');
      writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor sbmaster 127.0.0.1 ${master.port} 1\n`);
      sentinel = spawn('redis-server', [conf, '--sentinel', '--daemonize', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
      sentinel.on('error', () => undefined);
      const probe = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, retryStrategy: () => 50 });
      probe.on('error', () => undefined);
      raw.push(probe);
      await waitFor('the sentinel to know the master', async () => {
        const addr = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'sbmaster').catch(() => null)) as string[] | null;
        return Array.isArray(addr) && Number(addr[1]) === master.port;
      }, 8000, 20);
      probe.disconnect();
    });

    after(async () => {
      const proc = sentinel;
      if (proc && proc.exitCode === null) await new Promise((r) => proc.once('exit', r).kill('SIGKILL'));
      if (dir) rmSync(dir, { recursive: true, force: true });
      await master.stop();
    });

    it('finds the master through the sentinels and feeds changes', async () => {
      const keyPrefix = `t:${randomUUID()}:`;
      const store = await RedisStore.connect({
        sentinels: [{ host: '127.0.0.1', port: sentinelPort }],
        sentinelName: 'sbmaster',
        keyPrefix,
        commandTimeoutMs: 1000,
        logger: silentLogger(),
      });
      opened.push(store);
      const events: ChangeEvent[] = [];
      await store.subscribe((e) => events.push(e), () => undefined);
      const r = await store.allocatePort('alpha', HOST, { min: 7000, max: 7001 }, 1);
      assert.ok(r.ok);
      await waitFor('the event', () => events.length >= 1, 8000, 20);
      assert.equal(await rawClient(master).hexists(`${keyPrefix}assign`, `${HOST}:7000`), 1);
    });
  });

  describe('when Redis is unreachable', () => {
    it('fails connect() with StoreUnavailableError after a bounded wait', async () => {
      const port = await freePort();
      await assert.rejects(
        settleWithin(
          RedisStore.connect({
            url: `redis://127.0.0.1:${port}`,
            keyPrefix: 't:',
            commandTimeoutMs: 200,
            connectTimeoutMs: 500,
            logger: silentLogger(),
          }),
          5000,
        ),
        StoreUnavailableError,
      );
    });
  });

  describe('on a server that stops answering', () => {
    // A runaway script blocks the server: silent at first, then answering BUSY to everything.
    const server = new RedisServer({ extraArgs: ['--busy-reply-threshold', '400'] });
    before(async () => {
      await server.start();
    });
    after(async () => {
      await server.stop();
    });

    it('rejects with StoreUnavailableError on a timeout and on BUSY replies, then recovers', async () => {
      const impatient = await open(server, { commandTimeoutMs: 100 });
      const store = await open(server, { commandTimeoutMs: 5000 });
      const blocker = rawClient(server);
      await blocker.ping();
      const runaway = blocker.eval('while true do end', 0).catch((err: Error) => err);
      await sleep(20);

      await assert.rejects(settleWithin(impatient.version(), 3000), StoreUnavailableError);
      await sleep(500);
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['version (a transaction)', () => store.version()],
        ['snapshot (a transaction)', () => store.snapshot()],
        ['routeSnapshot (pages)', () => store.routeSnapshot({ backend() {}, assignment() {}, policy() {}, restart() {} })],
        ['allocatePort (a script)', () => store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, 1)],
        ['backendCount (a command)', () => store.backendCount()],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(settleWithin(call(), 3000), StoreUnavailableError, name);
      }

      const killer = new Redis(server.url, { enableReadyCheck: false });
      killer.on('error', () => undefined);
      raw.push(killer);
      await killer.script('KILL');
      assert.match(String(await runaway), /killed/i);
      await waitFor('the store to answer again', () => store.ping(), 8000, 20);
      assert.ok((await store.allocatePort('alpha', HOST, { min: 7000, max: 7000 }, 1)).ok);
    });
  });

  describe('across Redis restarts', () => {
    let server: RedisServer;
    beforeEach(async () => {
      server = new RedisServer({ appendOnly: true });
      await server.start();
    });
    afterEach(async () => {
      await server.stop();
    });

    it('rejects calls quickly with StoreUnavailableError while Redis is down, and works after it returns', async () => {
      const store = await open(server);
      const resyncs: number[] = [];
      const events: ChangeEvent[] = [];
      await store.subscribe((e) => events.push(e), () => resyncs.push(Date.now()));
      assert.ok((await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 }))).ok);
      const before = await store.version();
      await waitFor('the first event', () => events.length >= 1, 8000, 20);

      await server.kill();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['upsertBackend', () => store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002 }))],
        ['removeBackend', () => store.removeBackend('alpha', 'a1')],
        ['getBackends', () => store.getBackends('alpha')],
        ['expiredLeases', () => store.expiredLeases(Date.now(), 10)],
        ['allocatePort', () => store.allocatePort('beta', HOST, { min: 7000, max: 7001 }, 1)],
        ['snapshot', () => store.snapshot()],
        ['routeSnapshot', () => store.routeSnapshot({ backend() {}, assignment() {}, policy() {}, restart() {} })],
        ['version', () => store.version()],
        ['getToken', () => store.getToken('t1')],
        ['acquireLock', () => store.acquireLock('sweeper', 'p1', 1000)],
        ['swapCheckpoint', () => store.swapCheckpoint('sweep', 1)],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(settleWithin(call(), 3000), StoreUnavailableError, name);
      }
      assert.equal(await settleWithin(store.ping(), 3000), false);

      await server.start();
      await waitFor('the store to reconnect', () => store.ping(), 8000, 20);
      await waitFor('a resync after the feed reconnected', () => resyncs.length >= 1, 8000, 20);
      // The append-only file kept the table: same history, same version, same data.
      assert.deepEqual(await store.version(), before);
      assert.equal((await store.getBackends('alpha')).length, 1);
      assert.ok((await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002 }))).ok);
      await waitFor('an event over the re-established feed', () => events.length >= 2, 8000, 20);
      assert.equal(events[1].epoch, before.epoch);
      assert.equal(events[1].version, before.version + 1);
    });

    it('starts a new epoch when Redis comes back empty', async () => {
      const store = await open(server);
      const events: ChangeEvent[] = [];
      let resyncs = 0;
      await store.subscribe((e) => events.push(e), () => resyncs++);
      assert.ok((await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 }))).ok);
      const before = await store.version();

      await server.wipe();
      await server.start();
      await waitFor('the store to reconnect', () => store.ping(), 8000, 20);
      await waitFor('a resync', () => resyncs >= 1, 8000, 20);

      const r = await store.allocatePort('beta', HOST, { min: 7000, max: 7000 }, 1);
      assert.ok(r.ok);
      await waitFor('the first event of the new table', () => events.some((e) => e.epoch !== before.epoch), 8000, 20);
      const after = await store.version();
      assert.notEqual(after.epoch, before.epoch);
      assert.equal(after.version, 1);
      const snap = await store.snapshot();
      assert.equal(snap.epoch, after.epoch);
      assert.deepEqual(snap.backends, []);
    });

    it('closes without throwing while Redis is down', async () => {
      const store = await open(server);
      const unsubscribe = await store.subscribe(() => undefined, () => undefined);
      await server.kill();
      await settleWithin(unsubscribe(), 3000);
      await settleWithin(store.close(), 3000);
      await assert.rejects(store.version(), StoreUnavailableError);
    });
  });
});
