import { holdersOf, listeningSockets } from './proc-sockets';
import { programOf, descendsFrom, environOf, parentOf } from './proc-tree';

/** Set in the child's environment: which launcher started it, so the next launcher can tell an orphan. */
export const LAUNCHER_PID_ENV = 'SWITCHBOARD_LAUNCHER_PID';

/** The process that listens on a port, as far as /proc tells. */
export interface PortListener {
  pid: number;
  program: string | null;
  /** The launcher that started it, when its environment names one. */
  launcherPid: number | null;
  /** Started by a launcher that is no longer among its ancestors: that launcher died and left it running. */
  orphan: boolean;
}

/**
 * Who listens on `port` on this host: the processes holding a listening socket of that port, and among
 * them the topmost (a pre-forking server's workers share their parent's socket). Null where /proc cannot
 * tell (not Linux, another user's process).
 */
export function listenerOf(port: number): PortListener | null {
  const inodes = new Set(listeningSockets('self').filter((s) => s.port === port).map((s) => s.inode));
  const holders = holdersOf(inodes);
  if (holders.length === 0) return null;
  const top = holders.filter((pid) => !holders.includes(parentOf(pid) ?? -1));
  const pid = Math.min(...(top.length ? top : holders));
  const named = Number(environOf(pid, LAUNCHER_PID_ENV));
  const launcherPid = Number.isInteger(named) && named > 0 ? named : null;
  return { pid, program: programOf(pid), launcherPid, orphan: launcherPid !== null && !descendsFrom(pid, launcherPid) };
}
