import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger';
import type { Store } from './store';
import type { Assignment, PolicyRecord, Revocation, RouteAssignment, TokenRecord } from './types';

/**
 * What the registry keeps of the store's state so that it can write it back after the store lost it:
 * the port assignments (a launcher-less tool's only trace: discovery heals through its assignment), the
 * token records and the revocations. Leases are not kept: registered backends come back with their next
 * heartbeat, discovered ones with a probe of their restored assignment.
 */
export interface RegistryCopy {
  format: 1;
  writtenAt: number;
  /** The table history the copy was taken from: a store at another epoch has lost what the copy holds. */
  epoch: string;
  version: number;
  assignments: Assignment[];
  tokens: TokenRecord[];
  revocations: Revocation[];
  /** The operator's policies (bans, tool policies, maintenance); absent in copies written before policies existed. */
  policies?: PolicyRecord[];
}

/** The table the registry process follows (its TableFeed), as far as the copy reads it. */
export interface FollowedTable {
  current(): {
    epoch: string;
    version: number;
    tools(): Iterable<{ assignments: readonly RouteAssignment[] }>;
    /** With the carried-over policies of a lost table while the carry-over lasts. */
    policies: { records: ReadonlyMap<string, PolicyRecord> };
  } | null;
  /** The assignments of the table before the store lost its state, while the carry-over lasts. */
  carriedAssignments(): readonly RouteAssignment[];
}

export interface DurableCopyOptions {
  store: Store;
  table: FollowedTable;
  /** Revocations this process knows, also those the store lost (the Authenticator's). */
  revokedIds: () => ReadonlySet<string>;
  /** Only the expiry leader writes the file: one writer per fleet, and the one that restores. */
  isLeader: () => boolean;
  /**
   * True while a write-back is pending: the table is then the store's emptied one, and writing it would
   * replace the copy that is about to be restored.
   */
  restoring: () => boolean;
  /** The file the copy is written to; null: kept in memory only. */
  file: string | null;
  intervalMs: number;
  logger: Logger;
  now?: () => number;
}

function assignmentKey(a: RouteAssignment): string {
  return `${a.host}:${a.port}\n${a.tool}`;
}

/** Reads a copy written by DurableCopy; null when there is none. A damaged file is an error to report, not an empty table. */
export function readCopyFile(file: string): RegistryCopy | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const copy = JSON.parse(text) as RegistryCopy;
  if (copy.format !== 1 || !Array.isArray(copy.assignments) || !Array.isArray(copy.tokens) || !Array.isArray(copy.revocations)) {
    throw new Error(`${file} is not a registry copy of format 1`);
  }
  return copy;
}

/** Write to a temporary file, flush it, rename over the old one: a crash leaves the old copy or the new, never half. */
function writeAtomically(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Keeps the registry's copy current: every `intervalMs` it merges what the store holds into what it
 * remembers. Token records and revocations are only ever added (a record leaves once revoked), so a store
 * that came back empty cannot empty the copy; assignments are the followed table's, with the carried-over
 * ones of a lost table, so they survive the loss for as long as the carry-over lasts.
 */
export class DurableCopy {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly revocations = new Map<string, Revocation>();
  private readonly createdAt = new Map<string, number>();
  private assignments: Assignment[] = [];
  private policies: PolicyRecord[] = [];
  private from = { epoch: '', version: 0 };
  private written = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: DurableCopyOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Seeds the memory with a copy read at start (the file), so the first refresh cannot forget it. */
  seed(copy: RegistryCopy): void {
    this.addCredentials(copy.tokens, copy.revocations);
    for (const a of copy.assignments) this.createdAt.set(assignmentKey(a), a.createdAt);
    this.policies = copy.policies ?? [];
  }

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => void this.refresh().finally(tick), this.opts.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** What the registry remembers now: assignments read from the table this moment (a loss may have just been noticed). */
  copy(): RegistryCopy {
    this.takeAssignments(this.now());
    return {
      format: 1,
      writtenAt: this.now(),
      epoch: this.from.epoch,
      version: this.from.version,
      assignments: this.assignments.map((a) => ({ ...a })),
      tokens: [...this.tokens.values()],
      revocations: [...this.revocations.values()],
      policies: this.policies,
    };
  }

  /** One merge (and, on the leader, one write of the file when something changed). Never throws. */
  async refresh(): Promise<void> {
    try {
      const [tokens, revocations] = await Promise.all([this.opts.store.listTokens(), this.opts.store.listRevocations()]);
      this.addCredentials(tokens, revocations);
    } catch (err) {
      this.opts.logger.debug({ event: 'copy.store_unread', err: (err as Error).message }, 'durable copy: store not read');
    }
    const now = this.now();
    for (const id of this.opts.revokedIds()) {
      if (!this.revocations.has(id)) this.revocations.set(id, { id, tool: this.tokens.get(id)?.tool ?? '', revokedAt: now });
      this.tokens.delete(id);
    }
    if (this.opts.file && this.opts.isLeader() && !this.opts.restoring()) this.write(this.opts.file);
  }

  private addCredentials(tokens: readonly TokenRecord[], revocations: readonly Revocation[]): void {
    for (const r of revocations) {
      if (!this.revocations.has(r.id)) this.revocations.set(r.id, r);
      this.tokens.delete(r.id);
    }
    for (const t of tokens) if (!this.revocations.has(t.id)) this.tokens.set(t.id, t);
  }

  private takeAssignments(now: number): void {
    const table = this.opts.table.current();
    if (!table) return;
    const seen = new Map<string, Assignment>();
    const add = (a: RouteAssignment) => {
      const key = assignmentKey(a);
      if (seen.has(key)) return;
      let at = this.createdAt.get(key);
      if (at === undefined) this.createdAt.set(key, (at = now));
      seen.set(key, { tool: a.tool, host: a.host, port: a.port, createdAt: at });
    };
    for (const route of table.tools()) for (const a of route.assignments) add(a);
    for (const a of this.opts.table.carriedAssignments()) add(a);
    for (const key of this.createdAt.keys()) if (!seen.has(key)) this.createdAt.delete(key);
    this.assignments = [...seen.values()];
    this.policies = [...table.policies.records.values()];
    this.from = { epoch: table.epoch, version: table.version };
  }

  private write(file: string): void {
    const copy = this.copy();
    if (copy.epoch === '') return; // no table followed yet: nothing known to write
    // writtenAt changes every time: compare the content without it.
    const content = JSON.stringify({ ...copy, writtenAt: 0 });
    if (content === this.written) return;
    try {
      writeAtomically(file, JSON.stringify(copy));
      this.written = content;
    } catch (err) {
      this.opts.logger.error({ event: 'copy.write_failed', file, err: (err as Error).message }, 'durable copy not written');
    }
  }
}
