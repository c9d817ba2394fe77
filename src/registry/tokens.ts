import crypto from 'node:crypto';
import { ConfigError, type Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Store } from './store';
import type { TokenRecord } from './types';

/**
 * Tool tokens come in two forms:
 * - signed, `sbs_<tool>_<id>_<mac>` (issued whenever the registry has a durable signing key, see
 *   token-keys.ts): the mac is HMAC-SHA256 of the tool and id under that key, so the registry verifies the
 *   token without the store, and a store that lost its state does not lose the fleet's credentials. Only a
 *   revocation (kept in the store, in every registry's memory and in its durable copy) can stop one.
 * - stored, `sbt_<id>_<secret>`: the id finds the record, the secret proves possession; verified against
 *   the store only (issued when the registry has no durable key; older tokens).
 * Only sha256 of a token's secret part is stored, so a leaked store does not leak usable tokens.
 */

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN = /^sbt_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;
const SIGNED_TOKEN = /^sbs_([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

export type Principal = { kind: 'admin' } | { kind: 'tool'; tool: string; tokenId: string };

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'missing' | 'malformed' | 'invalid' };

/** Signs and verifies tool tokens; `keys[0]` signs, every key verifies (older ones during a rotation). */
export interface TokenSigner {
  sign(tool: string, id: string): string;
  verify(tool: string, id: string, mac: string): boolean;
}

export function hmacSigner(keys: readonly Buffer[]): TokenSigner {
  if (keys.length === 0) throw new Error('hmacSigner needs at least one key');
  const mac = (key: Buffer, tool: string, id: string) => crypto.createHmac('sha256', key).update(`sbs\n${tool}\n${id}`).digest();
  return {
    sign: (tool, id) => mac(keys[0], tool, id).toString('base64url'),
    verify: (tool, id, given) => {
      const g = Buffer.from(given, 'base64url');
      // Base64 decoding ignores the last character's spare bits: only the one canonical spelling is a token.
      if (g.toString('base64url') !== given) return false;
      return keys.some((k) => {
        const expected = mac(k, tool, id);
        return g.length === expected.length && crypto.timingSafeEqual(g, expected);
      });
    },
  };
}

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

/** A signed tool token for `tool`; its record keeps the hash of the mac like a stored token's secret. */
export function generateSignedToken(tool: string, now: number, signer: TokenSigner): { token: string; record: TokenRecord } {
  const id = newTokenId();
  const mac = signer.sign(tool, id);
  return { token: `sbs_${tool}_${id}_${mac}`, record: { id, tool, hash: hashSecret(mac), createdAt: now } };
}

/**
 * The token id of an Authorization header carrying a well-formed tool token (`sbt_<id>_<secret>` or
 * `sbs_<tool>_<id>_<mac>`), for logs: the id names the token without giving any of its secret away.
 */
export function tokenIdOf(header: string | undefined): string | null {
  const token = header ? bearerToken(header) : null;
  if (token === null) return null;
  return parseSignedToken(token)?.id ?? parseToken(token)?.id ?? null;
}

export function parseToken(token: string): { id: string; secret: string } | null {
  const m = TOKEN.exec(token);
  return m ? { id: m[1], secret: m[2] } : null;
}

export function parseSignedToken(token: string): { tool: string; id: string; mac: string } | null {
  const m = SIGNED_TOKEN.exec(token);
  return m ? { tool: m[1], id: m[2], mac: m[3] } : null;
}

/** The bearer token of an Authorization header; null when the header is not `Bearer <token>`. */
export function bearerToken(header: string): string | null {
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return m ? m[1] : null;
}

/**
 * Checks bearer tokens. Stored-token records are cached briefly: a heartbeat should not cost a store round
 * trip for its token on top of the one for its lease. Revocations are read from the store at most once per
 * `cacheMs` and never forgotten, so a revocation this process has seen holds even when the store lost it. A
 * revocation through this process takes effect at once (revoke); one through another process within `cacheMs`.
 */
export class Authenticator {
  private readonly adminDigest: Buffer;
  private readonly cache = new Map<string, { record: TokenRecord; until: number }>();
  private readonly cacheMs: number;
  private readonly store: Store;
  private readonly signer: TokenSigner | null;
  private readonly now: () => number;
  private readonly revoked = new Set<string>();
  private revocationsAt = -Infinity;
  private revocationRead: Promise<void> | null = null;
  private readonly metrics: Metrics | null;

  constructor(opts: { adminToken: string; store: Store; signer?: TokenSigner | null; cacheMs?: number; now?: () => number; metrics?: Metrics }) {
    this.adminDigest = sha256(opts.adminToken);
    this.store = opts.store;
    this.signer = opts.signer ?? null;
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
    const signed = parseSignedToken(token);
    if (signed) return this.signedToken(signed);
    const parsed = parseToken(token);
    if (!parsed) return { ok: false, reason: 'invalid' };
    const record = await this.record(parsed.id);
    if (!record || record.id !== parsed.id || this.revoked.has(parsed.id)) return { ok: false, reason: 'invalid' };
    const stored = Buffer.from(record.hash, 'hex');
    const given = sha256(parsed.secret);
    if (stored.length !== given.length || !crypto.timingSafeEqual(stored, given)) return { ok: false, reason: 'invalid' };
    return { ok: true, principal: { kind: 'tool', tool: record.tool, tokenId: record.id } };
  }

  /** Takes effect in this process at once, whatever the store answers later. */
  revoke(tokenId: string): void {
    this.cache.delete(tokenId);
    this.revoked.add(tokenId);
  }

  /** Revocations this process knows of (the store's and its own): part of the registry's durable copy. */
  revokedIds(): ReadonlySet<string> {
    return this.revoked;
  }

  private async signedToken(t: { tool: string; id: string; mac: string }): Promise<AuthResult> {
    if (!this.signer || !this.signer.verify(t.tool, t.id, t.mac)) return { ok: false, reason: 'invalid' };
    await this.freshRevocations();
    if (this.revoked.has(t.id)) return { ok: false, reason: 'invalid' };
    return { ok: true, principal: { kind: 'tool', tool: t.tool, tokenId: t.id } };
  }

  /**
   * One read of the revocation list per `cacheMs`, shared by concurrent callers. A store that cannot be
   * read leaves the known list in force: a valid signature is what keeps the fleet heartbeating through an
   * outage of the store.
   */
  private freshRevocations(): Promise<void> {
    if (this.now() - this.revocationsAt < this.cacheMs) return Promise.resolve();
    this.revocationRead ??= this.store
      .listRevocations()
      .then((list) => {
        for (const r of list) this.revoked.add(r.id);
        this.revocationsAt = this.now();
      })
      .catch(() => {
        // Asked again only after cacheMs: while the store is down every heartbeat would wait for it.
        this.revocationsAt = this.now();
      })
      .finally(() => {
        this.revocationRead = null;
      });
    return this.revocationRead;
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

/** The shortest admin token a registry starts with: as many characters as a generated one has bytes of randomness. */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

/**
 * The admin token: the configured one, or a fresh one for this run. A generated token is written once to
 * stderr, outside the JSON log, so it reaches the operator's terminal but not the log pipeline. A
 * configured one shorter than ADMIN_TOKEN_MIN_LENGTH is refused: it holds every tool's routes, and the
 * failed-authentication limit slows guessing per address, not across many.
 */
export function resolveAdminToken(config: Config, logger: Logger, out: NodeJS.WritableStream = process.stderr): string {
  if (config.adminToken && config.adminToken.length < ADMIN_TOKEN_MIN_LENGTH) {
    throw new ConfigError(
      `SWITCHBOARD_ADMIN_TOKEN (adminToken): must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters, got ${config.adminToken.length}; generate one with: openssl rand -base64 32`,
    );
  }
  if (config.adminToken) return config.adminToken;
  const token = `sba_${crypto.randomBytes(32).toString('base64url')}`;
  out.write(
    `switchboard: no admin token configured (SWITCHBOARD_ADMIN_TOKEN); generated one for this run:\n` +
      `switchboard: admin token: ${token}\n`,
  );
  logger.warn({ event: 'admin_token.generated' }, 'no admin token configured; generated one for this run and printed it on stderr');
  return token;
}
