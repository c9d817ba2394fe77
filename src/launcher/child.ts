import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Logger } from '../logger';
import { startWatchdog, type Watchdog } from './watchdog';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The shell's convention: the exit code, or 128 + the signal's number when a signal ended the process. */
export function exitStatus(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? os.constants.signals[exit.signal] : undefined;
  return 128 + (n ?? 0);
}

/**
 * The launched service: our stdio, its own environment, and one promise for its end. It runs in a process
 * group of its own, so the launcher's signals reach everything it started (a `sh -c` command's programs
 * included), as a terminal's Ctrl-C reaches a foreground job; a watchdog stops that group if the launcher
 * dies without doing so.
 */
export class Child {
  readonly exited: Promise<ChildExit>;
  private readonly proc: ChildProcess;
  private done = false;
  private watchdog: Watchdog | null = null;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv, logger: Logger) {
    this.proc = spawn(command, args, { env, stdio: 'inherit', detached: true });
    this.exited = new Promise<ChildExit>((resolve) => {
      this.proc.once('spawn', () => {
        this.watchdog = startWatchdog(this.proc.pid!, logger);
        logger.info({ event: 'child.started', childPid: this.proc.pid, watchdogPid: this.watchdog.pid, command }, 'child started');
      });
      // A command that cannot be started never emits 'exit'; answer the shell's 127/126 for it.
      this.proc.once('error', (err: NodeJS.ErrnoException) => {
        if (this.proc.pid !== undefined) return; // an error after spawn (a failed kill) is not the end
        this.done = true;
        logger.error({ event: 'child.failed', command, code: err.code, err: err.message }, 'child could not be started');
        resolve({ code: err.code === 'ENOENT' ? 127 : 126, signal: null });
      });
      this.proc.once('exit', (code, signal) => {
        this.done = true;
        this.watchdog?.standDown();
        logger.info({ event: 'child.exited', childPid: this.proc.pid, code, signal }, 'child exited');
        resolve({ code, signal });
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** To the child's process group; to the child alone if that group cannot be signalled. */
  kill(signal: NodeJS.Signals): void {
    if (this.done || this.proc.pid === undefined) return;
    try {
      process.kill(-this.proc.pid, signal);
    } catch {
      try {
        this.proc.kill(signal);
      } catch {
        /* it exited between the check and the kill */
      }
    }
  }
}
