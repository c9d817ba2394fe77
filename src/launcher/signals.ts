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
