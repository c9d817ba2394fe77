import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Metrics, PolicyRefusalReason } from '../metrics';
import type { NetworkSet } from '../net/networks';
import type { Maintenance, ToolPolicyRecord } from '../table/policy-records';
import type { PolicySet } from '../table/policy-set';
import type { RouteSource } from '../table/route-table';
import { clientAddress } from './client-slots';
import type { Exchange } from './exchange';
import type { RequestBody } from './forward-result';
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
   * The refusal for a request (`to`: its response) or a WebSocket handshake (`to`: the client's socket) to
   * the tool `found` resolved; null: it may go on, and what the tool's policy asks of its forwarding is set
   * on the exchange and the request. Either holds one of the tool's maxConcurrent places until it closes: a
   * WebSocket for as long as it is open, since it is in flight at the tool all that time.
   */
  admit(req: http.IncomingMessage, to: http.ServerResponse | Duplex, ex: Exchange, found: Routed): PolicyRefusal | null {
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
    const limited = this.byToolPolicy(own, req, to);
    if (limited !== null) return this.count(limited);
    if (own.responseTimeoutSeconds !== undefined) ex.responseTimeoutMs = own.responseTimeoutSeconds * 1000;
    if (own.stripPrefix && found.kind === 'route' && found.byPath) stripToolPrefix(req);
    return null;
  }

  /**
   * The body as it may be sent to the tool, or the refusal to answer with. A body read whole is judged by its
   * length; a streamed chunked one is sent with the tool's maxBodyBytes as its bound, which the forwarder
   * holds it to (413 while no answer has started, else the exchange is cut). A declared length was judged
   * before the body was read.
   */
  admitBody(req: http.IncomingMessage, tool: string, body: RequestBody): RequestBody | PolicyRefusal {
    const policies = this.o.routes.current()?.policies;
    const max = policies === undefined || policies.tools.size === 0 ? undefined : policies.tools.get(tool)?.maxBodyBytes;
    if (max === undefined) return body;
    if (body.kind === 'whole') return body.bytes.length > max ? this.count(BODY_TOO_LARGE) : body;
    return req.headers['content-length'] !== undefined ? body : { kind: 'stream', maxBytes: max };
  }

  /** A streamed body passed its bound in the forwarder: counted as the refusal it is. */
  countBodyTooLarge(): void {
    this.count(BODY_TOO_LARGE);
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

  private byToolPolicy(own: ToolPolicyRecord, req: http.IncomingMessage, to: http.ServerResponse | Duplex): PolicyRefusal | null {
    if (own.maintenance) return maintenancePage(own.maintenance);
    if (own.maxBodyBytes !== undefined && declaredLength(req) > own.maxBodyBytes) {
      // Not read to be dropped: the connection closes after the 413, as for any body refused unread (a
      // refused handshake's socket is closed anyway).
      if ('setHeader' in to) to.setHeader('connection', 'close');
      return BODY_TOO_LARGE;
    }
    if (own.rateLimit) {
      const wait = this.buckets.take(own.tool, clientAddress(req, this.o.trusted), own.rateLimit, Date.now());
      if (wait > 0) return { reason: 'rate_limited', retryAfter: wait };
    }
    if (own.maxConcurrent !== undefined && !this.takeSlot(own.tool, own.maxConcurrent, to)) return OVER_CONCURRENCY;
    return null;
  }

  /** One of the tool's in-flight places, given back when the response (or socket) closes; false when none is free. */
  private takeSlot(tool: string, max: number, to: http.ServerResponse | Duplex): boolean {
    const n = this.inFlight.get(tool) ?? 0;
    if (n >= max) return false;
    this.inFlight.set(tool, n + 1);
    to.once('close', () => {
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
