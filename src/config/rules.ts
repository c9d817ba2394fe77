import type { Config } from './schema';

/** A rule between settings, checked once each is valid on its own: what is wrong with `key`, or null. */
export interface Rule {
  key: string;
  broken(c: Config): string | null;
}

const usesRedis = (c: Config) => c.redis.url !== null || c.redis.sentinels.length > 0;

/** Whether the proxy serves HTTPS: a certificate pair or a directory of pairs is configured. */
export const tlsEnabled = (c: Config): boolean => (c.proxy.tls.cert !== null && c.proxy.tls.key !== null) || c.proxy.tls.certDir !== null;

export const RULES: Rule[] = [
  {
    key: 'control.port',
    broken: (c) => (c.proxy.port !== 0 && c.proxy.port === c.control.port ? 'must differ from proxy.port' : null),
  },
  {
    key: 'proxy.tls.key',
    broken: (c) => (c.proxy.tls.cert !== null && c.proxy.tls.key === null ? 'is required with proxy.tls.cert' : null),
  },
  {
    key: 'proxy.tls.cert',
    broken: (c) => (c.proxy.tls.key !== null && c.proxy.tls.cert === null ? 'is required with proxy.tls.key' : null),
  },
  {
    key: 'proxy.tls.port',
    broken: (c) => {
      const p = c.proxy.tls.port;
      if (!tlsEnabled(c) || p === 0) return null;
      return p === c.proxy.port ? 'must differ from proxy.port' : p === c.control.port ? 'must differ from control.port' : null;
    },
  },
  {
    key: 'redis.sentinelName',
    broken: (c) => (c.redis.sentinels.length > 0 && c.redis.sentinelName === null ? 'is required when sentinels are configured' : null),
  },
  {
    key: 'redis.sentinels',
    broken: (c) => (c.redis.sentinels.length === 0 && c.redis.sentinelName !== null ? 'must list at least one sentinel when sentinelName is set' : null),
  },
  {
    key: 'redis.waitReplicas',
    broken: (c) => (c.redis.waitReplicas > 0 && !usesRedis(c) ? 'needs Redis (redis.url or redis.sentinels): the embedded store has no replicas' : null),
  },
];
