import os from 'node:os';
import { exitStatus, type ChildExit } from './child';

/**
 * The signals a launcher passes on to its child. SIGHUP too: left to its default it would end the launcher
 * and orphan a still-registered child.
 */
export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** Routes the forwarded signals to `handler` instead of their default (ending the process); returns the undo. */
export function onSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  for (const s of FORWARDED_SIGNALS) process.on(s, handler);
  return () => {
    for (const s of FORWARDED_SIGNALS) process.off(s, handler);
  };
}

/** Signals that tell a child to stop; SIGHUP is forwarded too, but many services take it as "reload". */
export const STOPPING_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * The launcher's status after a stop signal (`signal`, null if none came): a stop asked for is a success,
 * so a service manager that sent SIGTERM does not count a clean stop as a failure. Whether the child died
 * of the signal or exited with 128 + its number (as shells and JVMs do) makes no difference; any other
 * status the child chose is its own and is kept.
 */
export function stopStatus(signal: NodeJS.Signals | null, exit: ChildExit | null): number {
  const n = signal ? (os.constants.signals[signal] ?? 0) : 0;
  const asked = signal !== null && STOPPING_SIGNALS.includes(signal);
  if (exit === null) return asked ? 0 : 128 + n;
  if (asked && (exit.signal === signal || exit.code === 128 + n)) return 0;
  return exitStatus(exit);
}
