import type { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import { failureFields } from './errors';
import { backendUrl } from './identity';
import { listenerOf, type PortListener } from './port-listener';
import { accepts } from './port-wait';
import { hostPort } from './proc-sockets';

/** Who answers on the port a launcher is about to give its child. */
export type PortHolder =
  | { kind: 'free' }
  /** The child of a launcher that died without stopping it (its watchdog killed too, or an older launcher). */
  | { kind: 'orphan'; listener: PortListener }
  /** A live registered backend of the launcher's own tool: another launcher of it already runs there. */
  | { kind: 'own_tool'; backendId: string; listener: PortListener | null }
  /** Something the registry does not list as a live registration of the tool. */
  | { kind: 'other'; listener: PortListener | null }
  /** The port accepts, and the registry could not be asked whose it is. */
  | { kind: 'unknown'; reason: string; listener: PortListener | null };

export interface PortHolderQuery {
  client: RegistryClient;
  tool: string;
  host: string;
  port: number;
}

/**
 * Before the child starts: a child given a port something already listens on fails to bind, and its
 * launcher would then watch (and register) the other listener. A port that accepts connections is looked
 * up on the host (/proc: which process, started by which launcher) and among the tool's backends
 * (GET /v1/tools/{tool} with the launcher's own token).
 */
export async function portHolder(q: PortHolderQuery): Promise<PortHolder> {
  if (!(await accepts(q.host, q.port))) return { kind: 'free' };
  const listener = listenerOf(q.port);
  // An orphan may still hold a live lease (its launcher's, not renewed any more): it is no running instance.
  if (listener?.orphan) return { kind: 'orphan', listener };
  const url = backendUrl(q.host, q.port);
  try {
    const listing = await q.client.getTool(q.tool);
    const live = listing?.backends.find((b) => b.source === 'registered' && b.url === url && b.leaseSecondsLeft > 0);
    return live ? { kind: 'own_tool', backendId: live.id, listener } : { kind: 'other', listener };
  } catch (err) {
    return { kind: 'unknown', reason: String(failureFields(err).err), listener };
  }
}

function described(listener: PortListener): string {
  return `pid ${listener.pid}${listener.program ? ` (${listener.program})` : ''}`;
}

/** One error line saying why the child is not started; the launcher then exits 1. */
export function reportTaken(holder: Exclude<PortHolder, { kind: 'free' }>, q: Omit<PortHolderQuery, 'client'>, logger: Logger): void {
  const at = hostPort(q.host, q.port);
  const listener = holder.listener;
  const fields = { event: 'port.taken', holder: holder.kind, host: q.host, port: q.port, holderPid: listener?.pid, holderProgram: listener?.program ?? undefined };
  switch (holder.kind) {
    case 'orphan':
      logger.error(
        { ...fields, launcherPid: holder.listener.launcherPid },
        `port ${at} (the assignment of tool "${q.tool}") is held by ${described(holder.listener)}, an orphan: started by a launcher (pid ${holder.listener.launcherPid}) ` +
          `that is gone; not starting a second child: stop it (kill ${holder.listener.pid}), then start the launcher again`,
      );
      return;
    case 'own_tool':
      logger.error({ ...fields, backendId: holder.backendId }, `port ${at} is taken by a running instance of tool "${q.tool}" (backend ${holder.backendId}); not starting a second one`);
      return;
    case 'other':
      logger.error(fields, `port ${at} (the assignment of tool "${q.tool}") is in use by ${listener ? described(listener) : 'another process'}, not a registered instance of "${q.tool}"; not starting the child`);
      return;
    case 'unknown':
      logger.error({ ...fields, err: holder.reason }, `port ${at} (the assignment of tool "${q.tool}") is in use${listener ? ` by ${described(listener)}` : ''}, and the registry could not be asked by whom (${holder.reason}); not starting the child`);
  }
}
