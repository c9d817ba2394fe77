import assert from 'node:assert/strict';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import { RedisServer } from '../support/redis-server';
import { startInProcess } from './helpers';
import { waitFor } from '../support/wait';

async function getJson(url: string): Promise<{ status: number; type: string | null; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

describe('/healthz and /readyz', function () {
  this.timeout(60_000);

  it('serve on the embedded store: alive and ready, with a JSON detail of each role', async () => {
    const sb = await startInProcess({ proxy: true, registry: true });
    try {
      const health = await getJson(`${sb.control}/healthz`);
      assert.equal(health.status, 200);
      assert.match(health.type ?? '', /^application\/json/);
      assert.equal(health.body.status, 'ok');
      assert.equal(health.body.pid, process.pid);

      const ready = await getJson(`${sb.control}/readyz`);
      assert.equal(ready.status, 200);
      assert.match(ready.type ?? '', /^application\/json/);
      assert.equal(ready.body.ready, true);
      assert.equal(ready.body.registry.storeUp, true);
      assert.equal(ready.body.registry.store, 'memory');
      assert.equal(ready.body.proxy.hasSnapshot, true);
    } finally {
      await sb.stop();
    }
  });

  describe('on Redis', () => {
    let redis: RedisServer;
    before(async () => {
      redis = await new RedisServer().start();
    });
    after(async () => {
      await redis?.stop();
    });

    it('a registry whose store is unreachable answers 503 with the reason, and is ready again once it is back', async () => {
      await redis.start();
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'readyz-registry:', commandTimeoutMs: 500, logger: silentLogger() });
      const sb = await startInProcess({ proxy: false, registry: true }, store);
      try {
        assert.equal((await getJson(`${sb.control}/readyz`)).status, 200);
        await redis.kill();
        const down = await getJson(`${sb.control}/readyz`);
        assert.equal(down.status, 503);
        assert.equal(down.body.ready, false);
        assert.equal(down.body.registry.storeUp, false);
        assert.equal(down.body.registry.store, 'redis');
        assert.equal((await getJson(`${sb.control}/healthz`)).status, 200, 'alive all the same: a restart would not bring the store back');

        await redis.start();
        const up = await waitFor('registry ready again', async () => {
          const r = await getJson(`${sb.control}/readyz`);
          return r.status === 200 ? r : null;
        }, 20_000, 200);
        assert.equal(up.body.registry.storeUp, true);
      } finally {
        await sb.stop();
        await store.close();
      }
    });

    it('a proxy without a snapshot answers 503; once it has loaded one it is ready', async () => {
      await redis.start();
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'readyz-proxy:', commandTimeoutMs: 500, logger: silentLogger() });
      await redis.kill();
      const sb = await startInProcess({ proxy: true, registry: false }, store);
      try {
        const notYet = await getJson(`${sb.control}/readyz`);
        assert.equal(notYet.status, 503);
        assert.equal(notYet.body.ready, false);
        assert.equal(notYet.body.proxy.hasSnapshot, false);
        assert.equal((await getJson(`${sb.control}/healthz`)).status, 200);

        await redis.start();
        const ready = await waitFor('proxy ready', async () => {
          const r = await getJson(`${sb.control}/readyz`);
          return r.status === 200 ? r : null;
        }, 20_000, 200);
        assert.equal(ready.body.proxy.hasSnapshot, true);
        assert.equal(typeof ready.body.proxy.version, 'number');

        // Having a snapshot is what serving needs: losing the store later keeps the proxy ready.
        await redis.kill();
        const later = await getJson(`${sb.control}/readyz`);
        assert.equal(later.status, 200);
        await waitFor('proxy notices the store is gone', async () => (await getJson(`${sb.control}/readyz`)).body.proxy.storeUp === false, 20_000, 200);
      } finally {
        await sb.stop();
        await store.close();
      }
    });
  });
});
