import type { Config } from '../config';
import type { Logger } from '../logger';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';
import type { Store } from './store';

/** REDIS_URL (or a sentinel list) selects Redis; nothing selects the embedded single-process store. */
export async function createStore(config: Config, logger: Logger): Promise<Store> {
  const r = config.redis;
  if (!r.url && r.sentinels.length === 0) {
    logger.info({ event: 'store.embedded' }, 'using the embedded in-process store (no REDIS_URL): one process only, nothing persists');
    return new MemoryStore();
  }
  return RedisStore.connect({
    url: r.url ?? undefined,
    sentinels: r.sentinels.length ? r.sentinels : undefined,
    sentinelName: r.sentinelName ?? undefined,
    keyPrefix: r.keyPrefix,
    commandTimeoutMs: r.commandTimeoutMs,
    waitReplicas: r.waitReplicas,
    waitTimeoutMs: r.waitTimeoutMs,
    logger,
  });
}
