import crypto from 'node:crypto';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Store } from './store';
import type { TokenRecord } from './types';

/**
 * Tool tokens look like `sbt_<id>_<secret>`: the id finds the record, the secret proves possession. Only
 * sha256(secret) is stored, so a leaked store does not leak usable tokens.
 */

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN = /^sbt_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

export type Principal = { kind: 'admin' } | { kind: 'tool'; tool: string; tokenId: string };

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'missing' | 'malformed' | 'invalid' };

function sha256(text: string): Buffer {
  return crypto.createHash('sha256').update(text).digest();
}

export function hashSecret(secret: string): string {
  return sha256(secret).toString('hex');
}

export function newTokenId(): string {
  // 256 is a multiple of 32, so masking keeps every letter equally likely.
  return Array.from(crypto.randomBytes(12), (b) => BASE32[b & 31]).join('');
}

export function generateToken(tool: string, now: number): { token: string; record: TokenRecord } {
  const id = newTokenId();
  const secret = crypto.randomBytes(32).toString('base64url');
  return { token: `sbt_${id}_${secret}`, record: { id, tool, hash: hashSecret(secret), createdAt: now } };
}

// Signed tool tokens, `sbs_<tool>_<id>_<mac>`: a tool name has no "_", so the id is the third part.
const ID_OF_TOKEN = /^(?:sbt_([a-z2-7]{12})_[A-Za-z0-9_-]{43}|sbs_[a-z0-9-]+_([a-z2-7]{12})_[A-Za-z0-9_-]+)$/;

/**
 * The token id of an Authorization header carrying a well-formed tool token (`sbt_<id>_<secret>` or
 * `sbs_<tool>_<id>_<mac>`), for logs: the id names the token without giving any of its secret away.
 */
export function tokenIdOf(header: string | undefined): string | null {
  const token = header ? bearerToken(header) : null;
  const m = token ? ID_OF_TOKEN.exec(token) : null;
  return m ? (m[1] ?? m[2]) : null;
}

export function parseToken(token: string): { id: string; secret: string } | null {
  const m = TOKEN.exec(token);
  return m ? { id: m[1], secret: m[2] } : null;
}

/** The bearer token of an Authorization header; null when the header is not `Bearer <token>`. */
export function bearerToken(header: string): string | null {
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return m ? m[1] : null;
}

/**
 * Checks bearer tokens. Token records are cached briefly: a heartbeat should not cost a store round trip
 * for its token on top of the one for its lease. A revocation through this process takes effect at once
 * (forget); one through another process within `cacheMs`.
 */
export class Authenticator {
  private readonly adminDigest: Buffer;
  private readonly cache = new Map<string, { record: TokenRecord; until: number }>();
  private readonly cacheMs: number;
  private readonly store: Store;
  private readonly now: () => number;
  private readonly metrics: Metrics | null;

  constructor(opts: { adminToken: string; store: Store; cacheMs?: number; now?: () => number; metrics?: Metrics }) {
    this.adminDigest = sha256(opts.adminToken);
    this.store = opts.store;
    this.cacheMs = opts.cacheMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? null;
  }

  /** Every request of the API (express routes and the heartbeat fast path) is judged here: refusals are counted here. */
  async authenticate(header: string | undefined): Promise<AuthResult> {
    const result = await this.check(header);
    if (!result.ok) this.metrics?.authFailures.inc({ reason: result.reason });
    return result;
  }

  private async check(header: string | undefined): Promise<AuthResult> {
    if (header === undefined || header === '') return { ok: false, reason: 'missing' };
    const token = bearerToken(header);
    if (token === null) return { ok: false, reason: 'malformed' };
    // Digests have equal lengths whatever was sent, so the comparison takes the same time for every guess.
    if (crypto.timingSafeEqual(sha256(token), this.adminDigest)) return { ok: true, principal: { kind: 'admin' } };
    const parsed = parseToken(token);
    if (!parsed) return { ok: false, reason: 'invalid' };
    const record = await this.record(parsed.id);
    if (!record || record.id !== parsed.id) return { ok: false, reason: 'invalid' };
    const stored = Buffer.from(record.hash, 'hex');
    const given = sha256(parsed.secret);
    if (stored.length !== given.length || !crypto.timingSafeEqual(stored, given)) return { ok: false, reason: 'invalid' };
    return { ok: true, principal: { kind: 'tool', tool: record.tool, tokenId: record.id } };
  }

  forget(tokenId: string): void {
    this.cache.delete(tokenId);
  }

  private async record(id: string): Promise<TokenRecord | null> {
    const now = this.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.record;
    const record = await this.store.getToken(id);
    if (record && this.cacheMs > 0) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(id, { record, until: now + this.cacheMs });
    } else {
      this.cache.delete(id);
    }
    return record;
  }
}

/**
 * The admin token: the configured one, or a fresh one for this run. A generated token is written once to
 * stderr, outside the JSON log, so it reaches the operator's terminal but not the log pipeline.
 */
export function resolveAdminToken(config: Config, logger: Logger, out: NodeJS.WritableStream = process.stderr): string {
  if (config.adminToken) return config.adminToken;
  const token = `sba_${crypto.randomBytes(32).toString('base64url')}`;
  out.write(
    `switchboard: no admin token configured (SWITCHBOARD_ADMIN_TOKEN); generated one for this run:\n` +
      `switchboard: admin token: ${token}\n`,
  );
  logger.warn({ event: 'admin_token.generated' }, 'no admin token configured; generated one for this run and printed it on stderr');
  return token;
}
