import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import { RedisServer } from '../support/redis-server';
import { storeContract } from './store.contract';

describe('RedisStore (contract)', () => {
  // One server for the file; a fresh key prefix per store keeps every test's data apart.
  const server = new RedisServer();

  before(async function () {
    this.timeout(15_000);
    await server.start();
  });

  after(async () => {
    await server.stop();
  });

  const redisStores = {
    async create() {
      return RedisStore.connect({
        url: server.url,
        keyPrefix: `contract:${randomUUID()}:`,
        commandTimeoutMs: 2000,
        logger: silentLogger(),
      });
    },
  };
  storeContract('redis', redisStores);
});
