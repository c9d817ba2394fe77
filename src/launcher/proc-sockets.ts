import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { allPids } from './proc-tree';

/** A TCP socket in the LISTEN state, as /proc/PID/net/tcp and tcp6 list it. */
export interface ListeningSocket {
  /** The kernel's inode of the socket: what /proc/PID/fd/N links to as `socket:[inode]`. */
  inode: string;
  address: string;
  port: number;
}

const TCP_LISTEN = '0A';

/** An address of /proc/net/tcp: 32-bit words in hex, each in the host's (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // The URL parser writes an IPv6 literal in its shortest form (:: for the longest run of zeros).
  return new URL(`http://[${groups.join(':')}]`).hostname.replace(/^\[|\]$/g, '');
}

/** Parses the text of /proc/PID/net/tcp or tcp6: its listening sockets. */
export function parseListening(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
    const [addr, port] = f[1].split(':');
    out.push({ inode: f[9], address: decodeAddress(addr), port: parseInt(port, 16) });
  }
  return out;
}

/** The listening TCP sockets of `pid`'s network namespace (empty where /proc cannot tell). */
export function listeningSockets(pid: number | 'self'): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const file of ['tcp', 'tcp6']) {
    try {
      out.push(...parseListening(readFileSync(`/proc/${pid}/net/${file}`, 'utf8')));
    } catch {
      /* no such table (no IPv6, not Linux) */
    }
  }
  return out;
}

/** The inodes of the sockets `pid` holds open (empty when its descriptors cannot be read). */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** The processes (among those whose descriptors can be read) that hold one of `inodes` open. */
export function holdersOf(inodes: Set<string>, pids: number[] = allPids()): number[] {
  if (inodes.size === 0) return [];
  return pids.filter((pid) => [...socketInodes(pid)].some((i) => inodes.has(i)));
}

/** host:port as a person writes it, IPv6 literals in brackets. */
export function hostPort(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}
