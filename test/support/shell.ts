import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './wait';

/** A shell script running in a process group of its own, as one terminal of a how-to would run it. */
export interface ShellScript {
  proc: ChildProcess;
  /** Everything it wrote, stdout and stderr interleaved as they came. */
  output(): string;
  /** What it wrote on stdout alone (a terminal shows no progress meter there). */
  stdout(): string;
  /** Resolves with its exit code once the script itself has ended. */
  exited: Promise<number | null>;
  /** Ends every process of its group (what the script started too): SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Whether a process of group `pgid` still runs. Read from /proc: a zombie (ended, not yet reaped) is not running. */
function groupAlive(pgid: number): boolean {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so read after its last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group has ended already
  }
}

/**
 * Runs `script` with `sh -c` in `cwd` with exactly `env`. The script leads a new process group, so stop()
 * reaches what it started (npm, npx, a launcher and its child) even after the shell itself has exited.
 */
export function startShell(script: string, opts: { cwd: string; env: Record<string, string> }): ShellScript {
  const proc = spawn('sh', ['-c', script], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  proc.stdout?.on('data', (d) => {
    out += d.toString();
    stdout += d.toString();
  });
  proc.stderr?.on('data', (d) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const pgid = proc.pid!;
  return {
    proc,
    output: () => out,
    stdout: () => stdout,
    exited,
    async stop(graceMs = 10_000) {
      signalGroup(pgid, 'SIGTERM');
      try {
        await waitFor(`process group ${pgid} to end`, () => !groupAlive(pgid), graceMs, 100);
      } catch {
        signalGroup(pgid, 'SIGKILL');
        await waitFor(`process group ${pgid} to end after SIGKILL`, () => !groupAlive(pgid), 5_000, 100);
      }
    },
  };
}
