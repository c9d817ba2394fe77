import type { PassiveHealth } from './health';
import type { Route } from '../table/route';
import type { RouteBackend } from '../table/route-backend';

/**
 * Round-robin over a tool's healthy backends, live ones first: a held backend (its lease lapsed, kept by
 * self-preservation) is most likely dead, so it gets traffic only when no live one is left. When every
 * backend is marked down they are tried anyway: passive health can be wrong (a whole pool restarting) and
 * a 502 is no better than a try.
 */
export class Balancer {
  private readonly next = new Map<string, number>();

  constructor(private readonly health: PassiveHealth) {}

  /** The next backend to try, skipping `tried`; null when none is left. */
  pick(route: Route, tried?: ReadonlySet<string>, now = Date.now()): RouteBackend | null {
    const list = route.backends;
    const n = list.length;
    if (n === 0) return null;
    const start = this.next.get(route.tool) ?? 0;
    this.next.set(route.tool, (start + 1) % n);
    // In order of preference after a healthy live backend: healthy held, down live, down held.
    let heldUp: RouteBackend | null = null;
    let liveDown: RouteBackend | null = null;
    let heldDown: RouteBackend | null = null;
    for (let i = 0; i < n; i++) {
      const b = list[(start + i) % n];
      if (tried?.has(b.id)) continue;
      const up = !this.health.isDown(route.tool, b, now);
      if (!b.held) {
        if (up) return b;
        liveDown ??= b;
      } else if (up) heldUp ??= b;
      else heldDown ??= b;
    }
    return heldUp ?? liveDown ?? heldDown;
  }
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Whether the method may be repeated without changing the outcome (RFC 9110 9.2.2). */
export function isIdempotent(method: string | undefined): boolean {
  return method !== undefined && IDEMPOTENT.has(method);
}

/**
 * Whether a failed attempt may be repeated on another backend. Never once a byte of the client's body
 * was consumed (it cannot be replayed: a retry would send a truncated body); always when nothing reached the backend; and when
 * the backend may have seen the request, only for an idempotent method without a streamed body (a body
 * read whole before forwarding is sent again from memory, as good as none). A slow backend (response
 * timeout) or a garbled answer is not retried: the next one would most likely do the same.
 */
export function mayRetry(
  method: string | undefined,
  streamsBody: boolean,
  r: { kind: string; phase: string; notSent: boolean; bodyConsumed: boolean },
): boolean {
  if (r.bodyConsumed) return false;
  if (r.kind !== 'refused' && r.kind !== 'assigned_elsewhere' && r.kind !== 'reset' && r.kind !== 'timeout') return false;
  if (r.kind === 'timeout' && r.phase !== 'connect') return false;
  if (r.notSent) return true;
  return !streamsBody && isIdempotent(method);
}
