import type { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import { failureFields } from './errors';
import { backendUrl } from './identity';
import { accepts } from './port-wait';

/** Who answers on the port a launcher is about to give its child. */
export type PortHolder =
  | { kind: 'free' }
  /** A live registered backend of the launcher's own tool: another launcher of it already runs there. */
  | { kind: 'own_tool'; backendId: string }
  /** Something the registry does not list as a live registration of the tool. */
  | { kind: 'other' }
  /** The port accepts, and the registry could not be asked whose it is. */
  | { kind: 'unknown'; reason: string };

export interface PortHolderQuery {
  client: RegistryClient;
  tool: string;
  host: string;
  port: number;
}

/**
 * Before the child starts: a child given a port something already listens on fails to bind, and its
 * launcher would then watch (and register) the other listener. A port that accepts connections is looked
 * up among the tool's backends (GET /v1/tools/{tool} with the launcher's own token).
 */
export async function portHolder(q: PortHolderQuery): Promise<PortHolder> {
  if (!(await accepts(q.host, q.port))) return { kind: 'free' };
  const url = backendUrl(q.host, q.port);
  try {
    const listing = await q.client.getTool(q.tool);
    const live = listing?.backends.find((b) => b.source === 'registered' && b.url === url && b.leaseSecondsLeft > 0);
    return live ? { kind: 'own_tool', backendId: live.id } : { kind: 'other' };
  } catch (err) {
    return { kind: 'unknown', reason: String(failureFields(err).err) };
  }
}

/** One error line saying why the child is not started; the launcher then exits 1. */
export function reportTaken(holder: Exclude<PortHolder, { kind: 'free' }>, q: Omit<PortHolderQuery, 'client'>, logger: Logger): void {
  const at = `${q.host.includes(':') ? `[${q.host}]` : q.host}:${q.port}`;
  const fields = { event: 'port.taken', holder: holder.kind, host: q.host, port: q.port };
  switch (holder.kind) {
    case 'own_tool':
      logger.error({ ...fields, backendId: holder.backendId }, `port ${at} is taken by a running instance of tool "${q.tool}" (backend ${holder.backendId}); not starting a second one`);
      return;
    case 'other':
      logger.error(fields, `port ${at} (the assignment of tool "${q.tool}") is in use by another process, not a registered instance of "${q.tool}"; not starting the child`);
      return;
    case 'unknown':
      logger.error({ ...fields, err: holder.reason }, `port ${at} (the assignment of tool "${q.tool}") is in use, and the registry could not be asked by whom (${holder.reason}); not starting the child`);
  }
}
