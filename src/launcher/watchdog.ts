import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Logger } from '../logger';

/** How long the child's process group has after SIGTERM before the watchdog sends SIGKILL. */
export const WATCHDOG_GRACE_MS = 10_000;
/**
 * How often the watchdog looks whether the group is gone. Each look forks a `sleep`, and an exited child
 * stays in its group as a zombie until init reaps it (seconds, under some inits): a fine tick would fork
 * a process per watchdog many times a second while many launchers' children end together.
 */
const TICK_MS = 1000;

/**
 * The watchdog, in sh: it reads its stdin, a pipe only the launcher holds open. A line means the child
 * ended and the launcher is fine: nothing to do. End of file without a line means the launcher died
 * (SIGKILL, a crash) with the child still running: SIGTERM to the child's process group ($1), then SIGKILL
 * if it lingers, and one log line ($2). SIGPIPE is ignored so a closed stderr cannot end it before the kill;
 * SIGINT and SIGHUP so a terminal's signals, meant for the launcher, do not end it early.
 */
const SCRIPT = [
  "trap '' INT HUP PIPE",
  'if read -r _; then exit 0; fi',
  'kill -TERM "-$1" 2>/dev/null || exit 0',
  'printf \'%s\\n\' "$2" >&2',
  'i=0',
  'while kill -0 "-$1" 2>/dev/null; do',
  '  i=$((i + 1))',
  '  if [ "$i" -gt "$3" ]; then kill -KILL "-$1" 2>/dev/null; exit 0; fi',
  `  sleep ${TICK_MS / 1000}`,
  'done',
].join('\n');

export interface Watchdog {
  pid: number | undefined;
  /** The child ended: the watchdog exits without touching anything. */
  standDown(): void;
}

/**
 * A launcher killed outright (SIGKILL, the OOM killer) cannot stop its child, and the child keeps the
 * tool's port: the next launcher then finds its port taken. Node has no PR_SET_PDEATHSIG, so a tiny
 * process outside the launcher's process group watches the launcher instead and stops the child's group
 * (the child runs in one of its own) when the launcher is gone.
 */
export function startWatchdog(childPgid: number, logger: Logger): Watchdog {
  const line = JSON.stringify({
    level: 40,
    ...logger.bindings(),
    event: 'launcher.gone',
    childPid: childPgid,
    msg: `the launcher is gone; its watchdog stops the child (SIGTERM to its process group, SIGKILL after ${WATCHDOG_GRACE_MS / 1000} s)`,
  });
  const proc = spawn('/bin/sh', ['-c', SCRIPT, 'switchboard-watchdog', String(childPgid), line, String(WATCHDOG_GRACE_MS / TICK_MS)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  proc.once('error', (err) => logger.warn({ event: 'watchdog.failed', err: err.message }, 'no watchdog: if the launcher is killed outright, its child keeps running'));
  // Neither the watchdog nor the pipe to it keeps the launcher running.
  proc.unref();
  const stdin = proc.stdin as Socket | null;
  stdin?.on('error', () => undefined);
  stdin?.unref();
  return {
    pid: proc.pid,
    standDown() {
      stdin?.end('child ended\n');
    },
  };
}
