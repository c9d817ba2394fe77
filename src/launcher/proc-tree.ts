import { readFileSync, readdirSync } from 'node:fs';

/**
 * What Linux's /proc says about processes: parents, command lines, environments. Every reader answers
 * null or empty where /proc is missing (not Linux) or the process is gone or not ours to read: callers
 * use what they learn to say more, never to decide something /proc could not confirm.
 */

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The parent of `pid` (field 4 of /proc/PID/stat, read after the command name, which may hold spaces and parentheses). */
export function parentOf(pid: number): number | null {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** Every process id /proc lists. */
export function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * `root` and its descendants. The kernel's own child lists (/proc/PID/task/TID/children) where it keeps
 * them; otherwise every process's parent, read once.
 */
export function processTree(root: number): number[] {
  const children = childrenLists() ?? parentScan();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;

  function childrenLists(): Map<number, number[]> | null {
    const out = new Map<number, number[]>();
    const seen = [root];
    for (let i = 0; i < seen.length; i++) {
      let tasks: string[];
      try {
        tasks = readdirSync(`/proc/${seen[i]}/task`);
      } catch {
        continue;
      }
      const kids: number[] = [];
      for (const tid of tasks) {
        const list = read(`/proc/${seen[i]}/task/${tid}/children`);
        if (list === null) return null;
        kids.push(...list.split(' ').filter(Boolean).map(Number));
      }
      out.set(seen[i], kids);
      seen.push(...kids);
    }
    return out;
  }
}

function parentScan(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const pid of allPids()) {
    const ppid = parentOf(pid);
    if (ppid === null) continue;
    const kids = out.get(ppid);
    if (kids) kids.push(pid);
    else out.set(ppid, [pid]);
  }
  return out;
}

/** Whether `ancestor` is `pid`'s parent, or its parent's, and so on up to init. */
export function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p: number | null = parentOf(pid), hops = 0; p !== null && p > 0 && hops < 1024; p = parentOf(p), hops++) {
    if (p === ancestor) return true;
  }
  return false;
}

/**
 * The program `pid` runs (the first word of its command line); null when it cannot be read. Only that:
 * the arguments of someone else's process may carry secrets, and this ends up in log lines.
 */
export function programOf(pid: number): string | null {
  const raw = read(`/proc/${pid}/cmdline`);
  return raw ? raw.split('\0')[0] || null : null;
}

/** One variable of `pid`'s environment (as it was when the process started); null when unset or unreadable. */
export function environOf(pid: number, name: string): string | null {
  const raw = read(`/proc/${pid}/environ`);
  if (raw === null) return null;
  const entry = raw.split('\0').find((e) => e.startsWith(`${name}=`));
  return entry === undefined ? null : entry.slice(name.length + 1);
}
