import type { Logger } from '../logger';
import { hostPort, listeningSockets, socketInodes, type ListeningSocket } from './proc-sockets';
import { processTree } from './proc-tree';

const CHECK_EVERY_MS = 500;

/**
 * While the launcher waits for its child's port: whether the child (or a process it started) listens on
 * some other port instead, the usual cause being a command that never read PORT, or a `$PORT` the
 * operator's shell expanded (to nothing) before the launcher set it. Without this the launcher would only
 * say, 30 s later, that the port does not accept connections yet.
 *
 * Cheap while nothing happens: each check reads the child's listening-socket tables, and only a socket
 * that appeared since the child started, on another port, costs a walk of the child's process tree and
 * descriptors to learn whether it is the child's.
 */
export class WrongPortWatch {
  /** Listening sockets that are not the child's: there before it started, or found to be someone else's. */
  private readonly known: Set<string>;
  private lastCheck = 0;
  private reported = '';

  constructor(
    private readonly port: number,
    private readonly logger: Logger,
  ) {
    this.known = new Set(listeningSockets('self').map((s) => s.inode));
  }

  /** Logs `port.mismatch` once per set of other ports the child's tree listens on. */
  check(childPid: number, now = Date.now()): void {
    if (now - this.lastCheck < CHECK_EVERY_MS) return;
    this.lastCheck = now;
    const fresh = listeningSockets(childPid).filter((s) => !this.known.has(s.inode));
    // Something listens on the port itself: the connection check will tell.
    if (fresh.length === 0 || fresh.some((s) => s.port === this.port)) return;
    const held = new Set<string>();
    for (const pid of processTree(childPid)) for (const inode of socketInodes(pid)) held.add(inode);
    const own: ListeningSocket[] = [];
    for (const s of fresh) {
      if (held.has(s.inode)) own.push(s);
      else this.known.add(s.inode);
    }
    if (own.length === 0) return;
    const at = [...new Set(own.map((s) => hostPort(s.address, s.port)))].sort();
    if (at.join(',') === this.reported) return;
    this.reported = at.join(',');
    const ports = [...new Set(own.map((s) => s.port))].sort((a, b) => a - b);
    this.logger.warn(
      { event: 'port.mismatch', port: this.port, listening: at },
      `child listens on port ${ports.join(', ')} (${at.join(', ')}), not on its assigned port ${this.port}: the command must listen on $PORT ` +
        `(a $PORT typed unquoted is expanded by your shell before the launcher sets it; quote the command: -- 'server --port $PORT')`,
    );
  }
}
