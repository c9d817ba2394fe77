import type { Logger } from '../logger';
import type { RefusedHeartbeats } from '../metrics';
import type { AuthResult } from './tokens';

export type RefusalReason = Exclude<AuthResult, { ok: true }>['reason'];

export interface Refusal {
  /** The tool of the path, once it passed the tool-name validator; null for a path that did not. */
  tool: string | null;
  /** Id of a well-formed token (never the token or its secret); null when there was none. */
  tokenId: string | null;
  reason: RefusalReason;
  /** The lease the refused heartbeat asked for (or the default). */
  ttlSeconds: number;
}

/** One run of refusals of a tool's heartbeats, with no heartbeat of it accepted in between. */
interface Run {
  since: number;
  last: number;
  ttlSeconds: number;
  loggedAt: number;
  /** Refusals since the last line logged. */
  unlogged: number;
}

export interface HeartbeatRefusalsOptions {
  logger: Logger;
  now?: () => number;
  /** One `auth.refused` line per tool per this interval, with the count of refusals it stands for. */
  logIntervalMs?: number;
  /** Tools followed at most: tool names in paths are the client's to choose. */
  maxTools?: number;
}

const LOG_INTERVAL_MS = 30_000;
const MAX_TOOLS = 10_000;

/**
 * Heartbeats the registry refuses (401), per tool: since when each tool's heartbeats are being refused and
 * the lease they asked for. A tool refused for longer than its lease has lost its routes, while its
 * launcher keeps sending a token the registry does not know (lost with the store, or revoked). A fleet
 * with a lost secret can send thousands a second: the log gets one line per tool per interval, with a count.
 */
export class HeartbeatRefusals {
  private readonly runs = new Map<string, Run>();
  /** Refusals whose path named no valid tool share one log throttle. */
  private readonly nameless: Run = { since: 0, last: 0, ttlSeconds: 0, loggedAt: -Infinity, unlogged: 0 };
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly logIntervalMs: number;
  private readonly maxTools: number;

  constructor(opts: HeartbeatRefusalsOptions) {
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.logIntervalMs = opts.logIntervalMs ?? LOG_INTERVAL_MS;
    this.maxTools = opts.maxTools ?? MAX_TOOLS;
  }

  refused(r: Refusal): void {
    const now = this.now();
    const run = r.tool === null ? this.nameless : this.runOf(r.tool, now);
    run.last = now;
    run.ttlSeconds = r.ttlSeconds;
    run.unlogged++;
    if (now - run.loggedAt < this.logIntervalMs) return;
    const refusingFor = r.tool !== null && run !== this.nameless ? { refusingForSeconds: Math.round((now - run.since) / 1000) } : {};
    this.logger.warn(
      { event: 'auth.refused', ...(r.tool !== null ? { tool: r.tool } : {}), tokenId: r.tokenId, reason: r.reason, count: run.unlogged, ...refusingFor },
      'heartbeat refused: bad or unknown token',
    );
    run.loggedAt = now;
    run.unlogged = 0;
  }

  /** A heartbeat of `tool` was accepted: its run of refusals is over. */
  accepted(tool: string): void {
    if (this.runs.size > 0) this.runs.delete(tool);
  }

  /** The tools being refused now, longest first; a run without a refusal for 2 x its ttl is over. */
  current(): RefusedHeartbeats[] {
    const now = this.now();
    this.prune(now);
    const out: RefusedHeartbeats[] = [];
    for (const [tool, run] of this.runs) out.push({ tool, seconds: (now - run.since) / 1000, ttlSeconds: run.ttlSeconds });
    return out.sort((a, b) => b.seconds - a.seconds || (a.tool < b.tool ? -1 : 1));
  }

  /** The tool's current run, a new one when its last run is over; the shared nameless one past maxTools. */
  private runOf(tool: string, now: number): Run {
    let run = this.runs.get(tool);
    if (run && over(run, now)) run = undefined;
    if (!run) {
      if (this.runs.size >= this.maxTools) this.prune(now);
      if (this.runs.size >= this.maxTools) return this.nameless;
      run = { since: now, last: now, ttlSeconds: 0, loggedAt: -Infinity, unlogged: 0 };
      this.runs.set(tool, run);
    }
    return run;
  }

  private prune(now: number): void {
    for (const [tool, run] of this.runs) if (over(run, now)) this.runs.delete(tool);
  }
}

function over(run: Run, now: number): boolean {
  return now - run.last > 2 * run.ttlSeconds * 1000;
}
