// The configuration: schema.ts declares every setting (default, bounds, env variable, meaning); load.ts
// layers defaults, file and environment and checks the result against it.
export { ENV_KEYS } from './env';
export { ConfigError } from './errors';
export { loadConfig, type LoadOptions } from './load';
export { redactedConfig } from './redact';
export { tlsEnabled } from './rules';
export { DEFAULTS, ENGINES, LOG_LEVELS, SCHEMA, type Config, type EngineName, type SentinelAddress } from './schema';
