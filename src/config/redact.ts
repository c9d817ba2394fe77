import type { Config } from './schema';

/** The config as it may be logged: secrets replaced. */
export function redactedConfig(c: Config): Config {
  const copy = structuredClone(c);
  if (copy.adminToken) copy.adminToken = '[redacted]';
  if (copy.discovery.token) copy.discovery.token = '[redacted]';
  if (copy.registry.tokenSecret) copy.registry.tokenSecret = '[redacted]';
  copy.registry.previousTokenSecrets = copy.registry.previousTokenSecrets.map(() => '[redacted]');
  if (copy.redis.url) {
    try {
      const u = new URL(copy.redis.url);
      if (u.password) u.password = 'redacted';
      copy.redis.url = u.toString();
    } catch {
      /* validated already */
    }
  }
  return copy;
}
