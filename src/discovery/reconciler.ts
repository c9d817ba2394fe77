import net from 'node:net';
import type { Logger } from '../logger';
import { RegistryError } from '../registry/errors';
import type { Leadership } from '../registry/leadership';
import type { Registry } from '../registry/registry';
import { assignmentKey, type Store } from '../registry/store';
import type { Assignment, Backend } from '../registry/types';
import { assignmentKeyOfUrl } from './discovered';
import type { Healer } from './healer';
import { hostPort } from './probe';

/** Probes of one round in flight at once: bounds sockets and file descriptors on a large fleet. */
const CONCURRENCY = 64;

export interface ReconcileRound {
  /** Assignments probed because no backend stands on them. */
  probed: number;
  healed: number;
  /** Discovered backends that still answer and had their lease renewed. */
  renewed: number;
  /** Discovered backends dropped: they stopped answering or lost their assignment. */
  dropped: number;
}

export interface ReconcilerOptions {
  store: Store;
  registry: Registry;
  healer: Healer;
  leadership: Leadership;
  intervalMs: number;
  /**
   * How long an answering assignment must stay without a live backend before the reconciler heals it
   * (capped at an eighth of the interval, so a heal still comes with the first round after the tool is
   * up). A launcher registers a moment after its child starts listening; a probe landing in that moment
   * would count a heal that never was and page someone for nothing.
   */
  settleMs?: number;
  logger: Logger;
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Heals without traffic. Every interval, in the one registry process holding the leadership lock, it
 * probes each assignment no live backend stands on (none at all, or only registrations whose lease lapsed)
 * and heals those that answer; and it probes each discovered backend, renewing the lease of those that
 * answer and dropping the rest, since nothing else renews them.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReconcileRound> | null = null;
  private stopped = true;
  /** Rounds this process completed as the leader (for benchmarks and status). */
  rounds = 0;

  constructor(private readonly opts: ReconcilerOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Rounds start every interval, not an interval after the last one ended: at fleet scale a round takes
   * seconds, and a tool coming up just after its probe would otherwise wait an interval plus a round. A
   * round longer than the interval is still followed by a pause (a quarter interval): the reconciler must
   * not run back to back when a store or a fleet of dead tools slows it down.
   */
  private schedule(delayMs = this.opts.intervalMs): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = Date.now();
      void this.runOnce().finally(() => this.schedule(Math.max(this.opts.intervalMs / 4, this.opts.intervalMs - (Date.now() - started))));
    }, delayMs);
    this.timer.unref();
  }

  /** One round, if this process leads; public so tests and benchmarks can drive it without the timer. */
  runOnce(): Promise<ReconcileRound> {
    const idle: ReconcileRound = { probed: 0, healed: 0, renewed: 0, dropped: 0 };
    if (!this.opts.leadership.isLeader) return Promise.resolve(idle);
    this.running ??= this.round()
      .catch((err: unknown) => {
        this.opts.logger.warn({ event: 'reconcile.failed', err: (err as Error).message }, 'reconcile round failed');
        return idle;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async round(): Promise<ReconcileRound> {
    const { store, healer, logger } = this.opts;
    const snap = await store.snapshot();
    const out: ReconcileRound = { probed: 0, healed: 0, renewed: 0, dropped: 0 };

    const now = Date.now();
    const standing = new Set<string>();
    const discovered: Backend[] = [];
    for (const b of snap.backends) {
      if (b.source === 'discovered') discovered.push(b);
      // A registration whose lease lapsed stands on nothing: its heartbeats stopped, and self-preservation
      // may keep it stored (and routed) for up to its hard cap. If its assignment answers, the heal replaces
      // it with a discovered backend of a fresh lease (the store allows that for lapsed registrations only).
      else if (b.expiresAt <= now) continue;
      for (const key of await this.keysOf(b.url)) standing.add(key);
    }
    const assignments = new Map<string, Assignment>();
    for (const a of snap.assignments) assignments.set(assignmentKey(a.host, a.port), a);
    const bare = snap.assignments.filter((a) => !standing.has(assignmentKey(a.host, a.port)));

    const answering: Assignment[] = [];
    await eachLimited(bare, CONCURRENCY, async (a) => {
      out.probed++;
      if ((await healer.prober(a)).ok) answering.push(a);
    });
    const settleMs = Math.min(this.opts.settleMs ?? 0, this.opts.intervalMs / 8);
    if (answering.length > 0 && settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    await eachLimited(answering, CONCURRENCY, async (a) => {
      if (settleMs > 0 && (await this.standsNow(a))) return;
      if ((await this.write(a)) === 'created') out.healed++;
    });

    await eachLimited(discovered, CONCURRENCY, async (b) => {
      const key = assignmentKeyOfUrl(b.url);
      const a = key ? assignments.get(key) : undefined;
      if (!a || a.tool !== b.tool) return this.drop(b, 'its assignment is gone', out);
      const answer = await healer.prober(a);
      if (!answer.ok) return this.drop(b, answer.reason, out);
      const written = await this.write(a);
      if (written === 'created') out.healed++;
      else if (written === 'renewed') out.renewed++;
    });

    this.rounds++;
    if (out.healed > 0 || out.dropped > 0) logger.info({ event: 'reconcile.round', ...out }, 'reconcile round');
    return out;
  }

  private async write(a: Assignment): Promise<'created' | 'renewed' | 'skipped'> {
    try {
      return (await this.opts.healer.write(a, 'reconcile')).created ? 'created' : 'renewed';
    } catch (err) {
      // Registered meanwhile, or released meanwhile: either way there is nothing to heal.
      if (err instanceof RegistryError && (err.code === 'registered_exists' || err.code === 'no_such_assignment')) return 'skipped';
      // Refused by the registry's rules (e.g. a host name that now resolves outside allowedNetworks):
      // that assignment stays unhealed, the others of the round go on.
      if (err instanceof RegistryError) {
        this.opts.logger.warn({ event: 'reconcile.refused', tool: a.tool, address: hostPort(a), code: err.code, err: err.message }, 'discovery refused by the registry');
        return 'skipped';
      }
      throw err;
    }
  }

  /** Did a live backend (a registration that arrived while we settled) take this assignment meanwhile? */
  private async standsNow(a: Assignment): Promise<boolean> {
    const now = Date.now();
    const key = assignmentKey(a.host, a.port);
    for (const b of await this.opts.store.getBackends(a.tool)) {
      if (b.source === 'registered' && b.expiresAt <= now) continue;
      if ((await this.keysOf(b.url)).includes(key)) return true;
    }
    return false;
  }

  /**
   * The assignment keys a backend stands on. Assignments are keyed by address: a URL with an address
   * stands on that one, a URL naming its host on each address the name resolves to (and on the name).
   */
  private async keysOf(url: string): Promise<string[]> {
    const key = assignmentKeyOfUrl(url);
    if (key === null) return [];
    if (net.isIP(key.slice(0, key.lastIndexOf(':')))) return [key];
    return this.opts.registry.assignmentKeysOf(url);
  }

  private async drop(b: Backend, reason: string, out: ReconcileRound): Promise<void> {
    if (!(await this.opts.registry.deregister(b.tool, b.id))) return;
    out.dropped++;
    this.opts.logger.warn({ event: 'discovery.dropped', tool: b.tool, backend: b.id, url: b.url, reason }, `dropped discovered backend of ${b.tool}: ${reason}`);
  }
}
