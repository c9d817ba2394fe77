import type http from 'node:http';
import type { Metrics, PolicyRefusalReason } from '../metrics';
import type { NetworkSet } from '../net/networks';
import type { Maintenance, ToolPolicyRecord } from '../table/policy-records';
import type { PolicySet } from '../table/policy-set';
import type { RouteSource } from '../table/route-table';
import { clientAddress } from './client-slots';
import type { Exchange } from './exchange';
import { RateBuckets } from './rate-buckets';
import type { Resolution } from './route-resolution';
import { stripToolPrefix } from './strip-prefix';

/** Why a request is refused on a policy, and what its page says besides the reason's own words. */
export interface PolicyRefusal {
  reason: PolicyRefusalReason;
  /** The operator's words: a maintenance message, or a ban's reason when proxy.banReasonOnPage is on. */
  message?: string;
  retryAfter?: number;
}

export interface PolicyGateOptions {
  routes: RouteSource;
  /** Whose X-Forwarded-For names the client (proxy.trustedProxies): the address bans and rate limits judge. */
  trusted: NetworkSet;
  requireUserAgent: boolean;
  banReasonOnPage: boolean;
  metrics?: Metrics;
}

/** A resolution that reaches a tool: the gate's question is about that tool. */
type Routed = Exclude<Resolution, { kind: 'refused' }>;

const USER_AGENT: PolicyRefusal = Object.freeze({ reason: 'user_agent' });
const BANNED: PolicyRefusal = Object.freeze({ reason: 'banned' });
const BODY_TOO_LARGE: PolicyRefusal = Object.freeze({ reason: 'body_too_large' });
const OVER_CONCURRENCY: PolicyRefusal = Object.freeze({ reason: 'over_concurrency', retryAfter: 1 });

/** Seconds until `until`, at least 1; undefined when there is no `until` or it has passed. */
function secondsUntil(until: number | undefined, now: number): number | undefined {
  if (until === undefined || until <= now) return undefined;
  return Math.max(1, Math.ceil((until - now) / 1000));
}

function maintenancePage(m: Maintenance): PolicyRefusal {
  return { reason: 'maintenance', message: m.message, retryAfter: secondsUntil(m.until, Date.now()) };
}

/** The body length a request declares; -1 without Content-Length. */
function declaredLength(req: http.IncomingMessage): number {
  const cl = req.headers['content-length'];
  return cl === undefined ? -1 : Number(cl);
}

/**
 * The operator's policies on the hot path, one call per request once its tool is known: bans (address,
 * User-Agent), the maintenance switches, then the tool's own policy (body size, rate limit, concurrency,
 * response timeout, prefix stripping). The policies come with the route table the request reads
 * (RouteTable.policies), so they change with it, without a store read; the counts behind maxConcurrent and
 * rateLimit are this process's own. A table without policies costs a request one property read and a check
 * of proxy.requireUserAgent.
 */
export class PolicyGate {
  private readonly counters = new Map<PolicyRefusalReason, { inc(): void }>();
  private readonly buckets = new RateBuckets();
  /** Requests in flight per tool with a maxConcurrent. */
  private readonly inFlight = new Map<string, number>();
  /** The policies the buckets were last tidied for. */
  private seen: PolicySet | null = null;

  constructor(private readonly o: PolicyGateOptions) {}

  /**
   * The refusal for a request (`res`) or a WebSocket handshake (`res` null: no concurrency slot, its
   * connection may last hours) to the tool `found` resolved; null: it may go on, and what the tool's policy
   * asks of its forwarding is set on the exchange and the request.
   */
  admit(req: http.IncomingMessage, res: http.ServerResponse | null, ex: Exchange, found: Routed): PolicyRefusal | null {
    const ua = req.headers['user-agent'];
    if (this.o.requireUserAgent && !ua) return this.count(USER_AGENT);
    const policies = this.o.routes.current()?.policies;
    if (policies === undefined || policies.empty) return null;
    const tool = found.route.tool;
    const refusal = this.byPolicies(policies, req, tool, ua);
    if (refusal !== null) return this.count(refusal);
    const own = policies.tools.size > 0 ? policies.tools.get(tool) : undefined;
    if (own === undefined) return null;
    if (policies !== this.seen) this.tidy(policies);
    const limited = this.byToolPolicy(own, req, res);
    if (limited !== null) return this.count(limited);
    if (own.responseTimeoutSeconds !== undefined) ex.responseTimeoutMs = own.responseTimeoutSeconds * 1000;
    if (own.stripPrefix && found.kind === 'route' && found.byPath) stripToolPrefix(req);
    return null;
  }

  /**
   * A streamed body (no Content-Length, or one the client may exceed) counted as it goes to the backend:
   * past the tool's maxBodyBytes the request is cut, and counted as `body_too_large`. A body read whole
   * is judged by its length: the refusal to answer with, or null.
   */
  admitBody(req: http.IncomingMessage, tool: string, body: { kind: 'whole'; bytes: Buffer } | { kind: 'stream' }): PolicyRefusal | null {
    const policies = this.o.routes.current()?.policies;
    const max = policies === undefined || policies.tools.size === 0 ? undefined : policies.tools.get(tool)?.maxBodyBytes;
    if (max === undefined) return null;
    if (body.kind === 'whole') return body.bytes.length > max ? this.count(BODY_TOO_LARGE) : null;
    // A declared length was judged before the body was read; what is left is a chunked body. A listener
    // must not set a body flowing before the forwarder pipes it.
    if (req.headers['content-length'] !== undefined) return null;
    if (req.readableFlowing === null) req.pause();
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen <= max || req.destroyed) return;
      this.count(BODY_TOO_LARGE);
      req.destroy();
    });
    return null;
  }

  private byPolicies(policies: PolicySet, req: http.IncomingMessage, tool: string, ua: string | undefined): PolicyRefusal | null {
    if (policies.bans.length > 0) {
      const now = Date.now();
      const index = policies.banIndex();
      const ban = index.byAddress(clientAddress(req, this.o.trusted), tool, now) ?? (ua ? index.byUserAgent(ua, tool, now) : undefined);
      if (ban) return this.o.banReasonOnPage && ban.reason ? { reason: 'banned', message: ban.reason } : BANNED;
    }
    if (policies.maintenance) return maintenancePage(policies.maintenance);
    return null;
  }

  private byToolPolicy(own: ToolPolicyRecord, req: http.IncomingMessage, res: http.ServerResponse | null): PolicyRefusal | null {
    if (own.maintenance) return maintenancePage(own.maintenance);
    if (own.maxBodyBytes !== undefined && declaredLength(req) > own.maxBodyBytes) {
      // Not read to be dropped: the connection closes after the 413, as for any body refused unread.
      res?.setHeader('connection', 'close');
      return BODY_TOO_LARGE;
    }
    if (own.rateLimit) {
      const wait = this.buckets.take(own.tool, clientAddress(req, this.o.trusted), own.rateLimit, Date.now());
      if (wait > 0) return { reason: 'rate_limited', retryAfter: wait };
    }
    if (own.maxConcurrent !== undefined && res !== null && !this.takeSlot(own.tool, own.maxConcurrent, res)) return OVER_CONCURRENCY;
    return null;
  }

  /** One of the tool's in-flight places, given back when the response closes; false when none is free. */
  private takeSlot(tool: string, max: number, res: http.ServerResponse): boolean {
    const n = this.inFlight.get(tool) ?? 0;
    if (n >= max) return false;
    this.inFlight.set(tool, n + 1);
    res.once('close', () => {
      const left = (this.inFlight.get(tool) ?? 1) - 1;
      if (left > 0) this.inFlight.set(tool, left);
      else this.inFlight.delete(tool);
    });
    return true;
  }

  /** New policies: the buckets of tools no longer rate-limited go. */
  private tidy(policies: PolicySet): void {
    this.seen = policies;
    this.buckets.keepOnly((tool) => policies.tools.get(tool)?.rateLimit !== undefined);
  }

  private count(refusal: PolicyRefusal): PolicyRefusal {
    const m = this.o.metrics;
    if (m) {
      let c = this.counters.get(refusal.reason);
      if (!c) this.counters.set(refusal.reason, (c = m.policyRefusals.labels(refusal.reason)));
      c.inc();
    }
    return refusal;
  }
}
