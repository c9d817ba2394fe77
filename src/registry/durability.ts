import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { DurableCopy, readCopyFile, type FollowedTable, type RegistryCopy } from './durable-copy';
import { StateRestorer, type LossSignal, type RestoreCounts, type RestoreSource } from './restorer';
import type { Store } from './store';

export interface DurabilityDeps {
  config: Config;
  store: Store;
  /** The registry process's TableFeed: the table it remembers, and the signal of a loss. */
  table: FollowedTable & LossSignal;
  isLeader: () => boolean;
  /** The Authenticator's view: revocations it has seen, and a way to teach it those of the file. */
  revocations: { revokedIds(): ReadonlySet<string>; revoke(id: string): void };
  afterRestore: () => Promise<unknown>;
  onRestored?: (source: RestoreSource, counts: RestoreCounts) => void;
  logger: Logger;
}

export interface Durability {
  copy: DurableCopy;
  restorer: StateRestorer;
  /** The file the leader writes (null: memory only). */
  file: string | null;
  stop(): Promise<void>;
}

/** The copy's file: the configured one; on the embedded store, one in the data directory; else none. */
export function copyFilePath(config: Config, storeKind: 'memory' | 'redis'): string | null {
  if (config.registry.snapshotPath) return config.registry.snapshotPath;
  if (storeKind === 'memory' && config.dataDir) return path.join(config.dataDir, 'registry-snapshot.json');
  return null;
}

function readAtStart(file: string | null, logger: Logger): RegistryCopy | null {
  if (!file) return null;
  try {
    return readCopyFile(file);
  } catch (err) {
    // Start without it rather than not at all: the fleet's heartbeats rebuild what they can.
    logger.error({ event: 'copy.unreadable', file, err: (err as Error).message }, 'durable copy unreadable; starting without it');
    return null;
  }
}

/**
 * The registry's defence against a store that loses its state: a copy of what it cannot rebuild from
 * heartbeats (assignments, tokens, revocations), kept in memory by every registry process and written to a
 * file by the leader, and the write-back of that copy after a loss (at start from the file, while running
 * from memory).
 */
export async function startDurability(d: DurabilityDeps): Promise<Durability> {
  const { config, store, logger } = d;
  const file = copyFilePath(config, store.kind);
  const atStart = readAtStart(file, logger);
  // Declared before the copy, which asks it whether a write-back is pending.
  let restorer: StateRestorer | null = null;
  const copy = new DurableCopy({
    store,
    table: d.table,
    revokedIds: () => d.revocations.revokedIds(),
    isLeader: d.isLeader,
    restoring: () => restorer?.restoring ?? false,
    file,
    intervalMs: config.registry.snapshotIntervalMs,
    logger,
  });
  const r = new StateRestorer({
    store,
    memory: () => copy.copy(),
    isLeader: d.isLeader,
    windowMs: config.leases.defaultTtlSeconds * 1000,
    afterRestore: d.afterRestore,
    onRestored: d.onRestored,
    logger,
  });
  restorer = r;
  if (atStart) {
    copy.seed(atStart);
    // A revoked token must not pass in the moment before the write-back reaches the store.
    for (const rev of atStart.revocations) d.revocations.revoke(rev.id);
    await r.fromFile(atStart);
  }
  r.watch(d.table);
  r.start();
  copy.start();
  logger.info({ event: 'copy.started', file, restored: atStart !== null }, file ? 'durable copy kept in a file' : 'durable copy kept in memory only (registry.snapshotPath)');
  return {
    copy,
    restorer: r,
    file,
    stop: async () => {
      copy.stop();
      await r.stop();
      // The last changes before a clean stop reach the file too (the leader writes it).
      await copy.refresh();
    },
  };
}
