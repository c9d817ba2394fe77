/** A configuration that cannot be used: the message names the setting (and its env variable) and what is wrong. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
