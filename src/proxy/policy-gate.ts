import type http from 'node:http';
import type { Metrics, PolicyRefusalReason } from '../metrics';
import type { NetworkSet } from '../net/networks';
import type { Maintenance } from '../table/policy-records';
import type { PolicySet } from '../table/policy-set';
import type { RouteSource } from '../table/route-table';
import { clientAddress } from './client-slots';

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

const USER_AGENT: PolicyRefusal = Object.freeze({ reason: 'user_agent' });
const BANNED: PolicyRefusal = Object.freeze({ reason: 'banned' });

/** Seconds until `until`, at least 1; undefined when there is no `until` or it has passed. */
function secondsUntil(until: number | undefined, now: number): number | undefined {
  if (until === undefined || until <= now) return undefined;
  return Math.max(1, Math.ceil((until - now) / 1000));
}

function maintenancePage(m: Maintenance): PolicyRefusal {
  return { reason: 'maintenance', message: m.message, retryAfter: secondsUntil(m.until, Date.now()) };
}

/**
 * The operator's policies on the hot path, one call per request once its tool is known: bans (address,
 * User-Agent), the maintenance switches, then the tool's own policy. The policies come with the route table
 * the request reads (RouteTable.policies), so they change with it, without a store read. A table without
 * policies costs a request one property read and a check of proxy.requireUserAgent.
 */
export class PolicyGate {
  private readonly counters = new Map<PolicyRefusalReason, { inc(): void }>();

  constructor(private readonly o: PolicyGateOptions) {}

  /** The refusal for a request to `tool`; null: it may go on. */
  admit(req: http.IncomingMessage, tool: string): PolicyRefusal | null {
    const ua = req.headers['user-agent'];
    if (this.o.requireUserAgent && !ua) return this.count(USER_AGENT);
    const policies = this.o.routes.current()?.policies;
    if (policies === undefined || policies.empty) return null;
    const refusal = this.byPolicies(policies, req, tool, ua);
    return refusal === null ? null : this.count(refusal);
  }

  private byPolicies(policies: PolicySet, req: http.IncomingMessage, tool: string, ua: string | undefined): PolicyRefusal | null {
    if (policies.bans.length > 0) {
      const now = Date.now();
      const index = policies.banIndex();
      const ban = index.byAddress(clientAddress(req, this.o.trusted), tool, now) ?? (ua ? index.byUserAgent(ua, tool, now) : undefined);
      if (ban) return this.o.banReasonOnPage && ban.reason ? { reason: 'banned', message: ban.reason } : BANNED;
    }
    if (policies.maintenance) return maintenancePage(policies.maintenance);
    const own = policies.tools.size > 0 ? policies.tools.get(tool) : undefined;
    if (own?.maintenance) return maintenancePage(own.maintenance);
    return null;
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
