import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { RegistryError } from '../registry/errors';
import type { Registry } from '../registry/registry';
import type { Assignment, Backend, RouteAssignment } from '../registry/types';
import { discoveredId, discoveredUrl } from './discovered';
import { configuredProber, hostPort, type Prober } from './probe';
import { ProbeGate } from './probe-gate';

export type HealTrigger = 'request' | 'reconcile';

export interface HealOutcome {
  backend: Backend;
  /** True when the backend is new: a heal. False: an existing discovered backend's lease was renewed. */
  created: boolean;
}

export interface HealerOptions {
  registry: Registry;
  config: Config;
  metrics: Metrics;
  logger: Logger;
  /** How assignments are probed (tests may count or refuse probes); the real probe unless given. */
  prober?: Prober;
}

/**
 * The registry's side of discovery: writes `discovered` backends through the Registry (so they obey the
 * same rules as registrations and reach every proxy through the change feed) and is the one place a heal
 * is counted and logged, whoever noticed it first. Proxies and the reconciler both come through here.
 */
export class Healer {
  readonly prober: Prober;
  private readonly registry: Registry;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /** Reports of one assignment from several proxies at once share one verification probe. */
  private readonly verifications: ProbeGate<Assignment>;
  private readonly ttlSeconds: number;

  constructor(opts: HealerOptions) {
    this.registry = opts.registry;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    const d = opts.config.discovery;
    this.prober = opts.prober ?? configuredProber(opts.config);
    this.verifications = new ProbeGate((a) => this.prober(a), 0);
    // A normal lease, but one that outlives a few reconcile rounds: the reconciler renews discovered
    // backends that still answer, and one slow round must not let a live one lapse.
    const leases = opts.config.leases;
    const wanted = Math.max(leases.defaultTtlSeconds, Math.ceil((3 * d.reconcileIntervalMs) / 1000));
    this.ttlSeconds = Math.min(leases.maxTtlSeconds, Math.max(leases.minTtlSeconds, wanted));
  }

  /**
   * A proxy's report that `tool` answers on host:port. The registry believes only itself: the assignment
   * must be the tool's, and the registry's own probe must get an answer, so a report cannot put an
   * arbitrary URL into the table.
   */
  async confirm(tool: string, host: string, port: number): Promise<HealOutcome> {
    this.registry.validators.tool(tool);
    const a = await this.registry.getAssignment(host, port);
    if (!a || a.tool !== tool) {
      throw new RegistryError(404, 'no_such_assignment', `tool "${tool}" holds no assignment ${host}:${port}`, 'port');
    }
    const answer = await this.verifications.check(`${a.host}:${a.port}`, a);
    if (!answer.ok) {
      throw new RegistryError(409, 'not_answering', `nothing answers on the assignment ${hostPort(a)} (${answer.reason})`, 'port');
    }
    return this.write(a, 'request');
  }

  /**
   * Writes (or renews) the discovered backend of an assignment known to answer. The assignment is read
   * again first: one released since it was seen must not be recreated by a discovered backend.
   */
  async write(a: RouteAssignment, trigger: HealTrigger): Promise<HealOutcome> {
    const held = await this.registry.getAssignment(a.host, a.port);
    if (!held || held.tool !== a.tool) {
      throw new RegistryError(404, 'no_such_assignment', `tool "${a.tool}" no longer holds ${hostPort(a)}`, 'port');
    }
    if (this.registry.stoppedRecently(a.tool)) {
      throw new RegistryError(409, 'stopping', `a launcher of tool "${a.tool}" just deregistered it: what answers on ${hostPort(a)} is on its way out`, 'port');
    }
    const outcome = await this.registry.heartbeatOutcome({
      tool: a.tool,
      id: discoveredId(a),
      url: discoveredUrl(a),
      ttl: this.ttlSeconds,
      source: 'discovered',
    });
    if (outcome.created) {
      this.metrics.selfHeals.inc({ trigger });
      this.logger.warn(
        { event: 'selfheal', tool: a.tool, address: hostPort(a), trigger, backend: outcome.backend.id },
        `self-heal: ${a.tool} answers on ${hostPort(a)} without a registration; routed as a discovered backend`,
      );
    }
    return outcome;
  }
}
