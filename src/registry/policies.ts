import type { Config } from '../config';
import type { Logger } from '../logger';
import {
  blockKey,
  MAINTENANCE_KEY,
  policyKey,
  toolPolicyKey,
  type BlockRecord,
  type GlobalMaintenanceRecord,
  type PolicyRecord,
  type ToolPolicyRecord,
} from '../table/policy-records';
import { RegistryError } from './errors';
import { PolicyValidators } from './policy-validate';
import type { Store } from './store';

function notFound(code: string, message: string, field: string | null): RegistryError {
  return new RegistryError(404, code, message, field);
}

/**
 * The operator's policies over the store: bodies validated into records, each change one write the
 * change feed carries to every proxy. A ban's expiry needs nobody: proxies stop applying it at its
 * expiresAt; sweepExpired removes the record afterwards so lists stay short.
 */
export class Policies {
  readonly validators: PolicyValidators;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    config: Config,
    private readonly logger: Logger,
    now?: () => number,
  ) {
    this.validators = new PolicyValidators(config.proxy);
    this.now = now ?? Date.now;
  }

  async putBlock(idParam: string, body: unknown): Promise<BlockRecord> {
    const record = await this.validators.blockRecord(this.validators.id(idParam), body, this.now);
    return this.put(record);
  }

  async getBlock(idParam: string): Promise<BlockRecord> {
    const id = this.validators.id(idParam);
    const b = await this.store.getPolicy(blockKey(id));
    if (b?.kind !== 'block' || expired(b, this.now())) throw notFound('no_such_block', `no ban "${id}"`, 'id');
    return b;
  }

  /** The bans in force, by id; expired ones not yet swept are left out. */
  async listBlocks(): Promise<BlockRecord[]> {
    const now = this.now();
    const bans = (await this.store.listPolicies()).filter((p): p is BlockRecord => p.kind === 'block' && !expired(p, now));
    return bans.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async removeBlock(idParam: string): Promise<void> {
    const id = this.validators.id(idParam);
    await this.remove(blockKey(id), notFound('no_such_block', `no ban "${id}"`, 'id'));
  }

  async putToolPolicy(tool: string, body: unknown): Promise<ToolPolicyRecord> {
    return this.put(this.validators.toolPolicyRecord(tool, body, this.now()));
  }

  async getToolPolicy(tool: string): Promise<ToolPolicyRecord> {
    const p = await this.store.getPolicy(toolPolicyKey(tool));
    if (p?.kind !== 'tool') throw notFound('no_such_policy', `tool "${tool}" has no policy`, 'tool');
    return p;
  }

  async removeToolPolicy(tool: string): Promise<void> {
    await this.remove(toolPolicyKey(tool), notFound('no_such_policy', `tool "${tool}" has no policy`, 'tool'));
  }

  async putMaintenance(body: unknown): Promise<GlobalMaintenanceRecord> {
    return this.put({ kind: 'maintenance', ...this.validators.maintenanceOf(body, null), updatedAt: this.now() });
  }

  async getMaintenance(): Promise<GlobalMaintenanceRecord> {
    const p = await this.store.getPolicy(MAINTENANCE_KEY);
    if (p?.kind !== 'maintenance') throw notFound('no_maintenance', 'the maintenance switch is off', null);
    return p;
  }

  async removeMaintenance(): Promise<void> {
    await this.remove(MAINTENANCE_KEY, notFound('no_maintenance', 'the maintenance switch is off', null));
  }

  /**
   * Removes the bans of `bans` past their expiry (each only if not put again meanwhile); answers how many.
   * `bans`: those of the table the registry follows, read from memory: a read of every policy from the store
   * would copy the whole ban list each round.
   */
  async sweepExpired(bans: Iterable<BlockRecord>): Promise<number> {
    const now = this.now();
    let removed = 0;
    for (const p of bans) {
      if (!expired(p, now)) continue;
      if (await this.store.removePolicy(policyKey(p), p.updatedAt)) {
        removed++;
        this.logger.info({ event: 'policy.expired', key: policyKey(p) }, 'ban expired and removed');
      }
    }
    return removed;
  }

  private async put<T extends PolicyRecord>(record: T): Promise<T> {
    await this.store.putPolicy(record);
    this.logger.info({ event: 'policy.put', key: policyKey(record) }, 'policy stored');
    return record;
  }

  private async remove(key: string, absent: RegistryError): Promise<void> {
    if (!(await this.store.removePolicy(key))) throw absent;
    this.logger.info({ event: 'policy.removed', key }, 'policy removed');
  }
}

function expired(b: BlockRecord, now: number): boolean {
  return b.expiresAt !== undefined && b.expiresAt <= now;
}
