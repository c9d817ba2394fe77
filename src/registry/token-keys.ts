import crypto from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { hmacSigner, type TokenSigner } from './tokens';

/** Where the signing key came from: said once in the start-up log, so an operator knows what a rotation touches. */
export type KeySource = 'config' | 'data-dir' | 'admin-token' | 'none';

const LABEL = 'switchboard tool-token key v1';

/** A key of its own for token signatures, whatever else the secret is used for (the admin token). */
function derive(secret: string): Buffer {
  return crypto.createHmac('sha256', secret).update(LABEL).digest();
}

/**
 * The data directory's own secret, made on first use. Written with O_EXCL: two processes starting at once
 * on one directory agree on the first one written.
 */
function dataDirSecret(dir: string): string {
  const file = path.join(dir, 'token-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, `${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}

/**
 * The keys that sign and verify tool tokens, in order of preference:
 * 1. registry.tokenSecret (with registry.previousTokenSecrets still verifying during a rotation): what a
 *    fleet of several registries should set, the same on each;
 * 2. on the embedded store, a secret kept in the data directory (one registry, one host);
 * 3. a key derived from the configured admin token, which every registry of a fleet shares already;
 * 4. none: tokens are issued in the stored form and verified against the store only. A key made up for one
 *    process would make tokens that another registry, or this one after a restart, refuses.
 */
export function tokenSigner(config: Config, storeKind: 'memory' | 'redis', logger: Logger): { signer: TokenSigner | null; source: KeySource } {
  const reg = config.registry;
  let source: KeySource = 'none';
  let keys: Buffer[] = [];
  if (reg.tokenSecret) {
    source = 'config';
    keys = [reg.tokenSecret, ...reg.previousTokenSecrets].map(derive);
  } else if (storeKind === 'memory' && config.dataDir) {
    source = 'data-dir';
    keys = [derive(dataDirSecret(config.dataDir)), ...reg.previousTokenSecrets.map(derive)];
  } else if (config.adminToken) {
    source = 'admin-token';
    keys = [derive(config.adminToken), ...reg.previousTokenSecrets.map(derive)];
  }
  if (source === 'none') {
    logger.warn(
      { event: 'tokens.unsigned' },
      'no token signing key (registry.tokenSecret, a data directory, or a configured admin token): tool tokens are verified against the store only and are lost with it',
    );
    return { signer: null, source };
  }
  logger.info({ event: 'tokens.signing', source }, 'tool tokens are signed and verify without the store');
  return { signer: hmacSigner(keys), source };
}
