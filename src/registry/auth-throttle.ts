import net from 'node:net';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { unmapIPv4 } from '../net/networks';
import { authFailure } from './api-errors';
import { RegistryError } from './errors';
import type { AuthResult } from './tokens';

/** Addresses remembered at once; the least recently failing one is forgotten first. */
const MAX_SOURCES = 10_000;
/** One `auth.throttled` line per address per interval, with the count of 429s it stands for. */
const LOG_INTERVAL_MS = 60_000;

interface Bucket {
  /** Failures the address may still make now; refills at perMinute a minute, up to perMinute. */
  allowance: number;
  at: number;
  /** 429s since the last log line. */
  throttled: number;
  loggedAt: number;
}

/**
 * Limits failed authentications per client address on the control port: past the limit a refusal is 429
 * with Retry-After instead of 401. Only failures count and only failures are throttled: a request whose
 * token is right passes from any address, so an attacker's guesses from the address of the admin or of a
 * tool never lock them out. Tokens are 256-bit, so guessing stays hopeless either way; what the limit
 * stops is a flood of guesses (each unknown stored token costs a store read) going unanswered and unseen.
 */
export class AuthThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly opts: { perMinute: number; logger: Logger; metrics?: Metrics | null; now?: () => number },
  ) {
    this.perMs = opts.perMinute / 60_000;
  }

  /** The answer to a request from `address` whose credentials failed: 401, or 429 once the address failed too often. */
  refusal(address: string | undefined, reason: Exclude<AuthResult, { ok: true }>['reason']): RegistryError {
    const now = (this.opts.now ?? Date.now)();
    const source = sourceOf(address);
    const b = this.bucket(source, now);
    if (b.allowance >= 1) {
      b.allowance -= 1;
      return authFailure(reason);
    }
    b.throttled++;
    this.opts.metrics?.authThrottled.inc();
    const retryAfter = Math.max(1, Math.ceil((1 - b.allowance) / this.perMs / 1000));
    if (now - b.loggedAt >= LOG_INTERVAL_MS) {
      // The address and a count, never the credentials: they are the attacker's guesses or a victim's token.
      this.opts.logger.warn(
        { event: 'auth.throttled', source, refused: b.throttled, limitPerMinute: this.opts.perMinute, retryAfterSeconds: retryAfter },
        'too many failed authentications from one address; answering 429',
      );
      b.throttled = 0;
      b.loggedAt = now;
    }
    return new RegistryError(
      429,
      'too_many_auth_failures',
      `too many failed authentications from ${source} (more than ${this.opts.perMinute} a minute); retry after ${retryAfter} s (a valid token is still accepted)`,
      null,
      { 'Retry-After': String(retryAfter) },
    );
  }

  private bucket(source: string, now: number): Bucket {
    const known = this.buckets.get(source);
    // Re-inserted on every failure: the map's first entry is the address that failed least recently.
    if (known) this.buckets.delete(source);
    else if (this.buckets.size >= MAX_SOURCES) this.buckets.delete(this.buckets.keys().next().value as string);
    const b = known ?? { allowance: this.opts.perMinute, at: now, throttled: 0, loggedAt: -Infinity };
    b.allowance = Math.min(this.opts.perMinute, b.allowance + (now - b.at) * this.perMs);
    b.at = now;
    this.buckets.set(source, b);
    return b;
  }
}

/**
 * Whose failures count together: an IPv4 address, or an IPv6 /64 (one host's usual share: counting each of
 * its 2^64 addresses apart would be no limit at all).
 */
export function sourceOf(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = unmapIPv4(address);
  if (!net.isIPv6(a)) return a;
  return `${ipv6Groups(a).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, in hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address.toLowerCase().split('%')[0];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
