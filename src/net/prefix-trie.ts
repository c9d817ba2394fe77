import net from 'node:net';
import { parseCidr, unmapIPv4 } from './networks';

/** One bit of an address: its children by the next bit, and the values of the ranges ending here. */
interface TrieNode<T> {
  zero: TrieNode<T> | null;
  one: TrieNode<T> | null;
  values: T[] | null;
}

function node<T>(): TrieNode<T> {
  return { zero: null, one: null, values: null };
}

/** An IPv4 address in dotted form as an unsigned 32-bit number; -1 when it is not one. No allocation. */
export function ipv4Number(text: string): number {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = -1;
    } else if (c >= 48 && c <= 57) {
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (part < 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/** The 16 bytes of an IPv6 address (embedded IPv4 tail included); null when it is not one. */
export function ipv6Bytes(text: string): Uint8Array | null {
  if (!net.isIPv6(text)) return null;
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const groups: number[] = [];
  const tailV4 = s.lastIndexOf(':');
  const last = s.slice(tailV4 + 1);
  let head = s;
  let v4: number[] = [];
  if (last.includes('.')) {
    const n = ipv4Number(last);
    if (n < 0) return null;
    v4 = [(n >>> 16) & 0xffff, n & 0xffff];
    head = s.slice(0, tailV4 + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const l = parse(left);
  const r = parse(right);
  const missing = 8 - l.length - r.length - v4.length;
  groups.push(...l, ...new Array<number>(right === undefined ? 0 : missing).fill(0), ...r, ...v4);
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/**
 * Address ranges (CIDR) and a value for each, answering which ranges hold an address by walking the
 * address's bits: at most 32 (IPv4) or 128 (IPv6) steps whatever the number of ranges, where a list or
 * node's BlockList checks every rule in turn. Built once, never changed after (the table's bans).
 */
export class PrefixTrie<T> {
  private readonly v4 = node<T>();
  private readonly v6 = node<T>();
  size = 0;

  /** Adds a range ("10.0.0.0/8", "2001:db8::/32", or one address); false when it is not a range. */
  add(cidr: string, value: T): boolean {
    const n = this.nodeOfV4(cidr) ?? this.nodeOfOther(cidr);
    if (!n) return false;
    (n.values ??= []).push(value);
    this.size++;
    return true;
  }

  /** The node of a plain IPv4 range, walked without parsing twice (the common case of a long ban list); null: not one. */
  private nodeOfV4(cidr: string): TrieNode<T> | null {
    const slash = cidr.indexOf('/');
    const bits = ipv4Number(slash < 0 ? cidr : cidr.slice(0, slash));
    if (bits < 0) return null;
    const rest = slash < 0 ? '32' : cidr.slice(slash + 1);
    const prefix = /^\d{1,2}$/.test(rest) ? Number(rest) : NaN;
    if (!(prefix >= 0 && prefix <= 32)) return null;
    let n = this.v4;
    for (let i = 0; i < prefix; i++) n = step(n, (bits >>> (31 - i)) & 1);
    return n;
  }

  private nodeOfOther(cidr: string): TrieNode<T> | null {
    const c = parseCidr(cidr);
    if (!c) return null;
    const address = unmapIPv4(c.address);
    let n: TrieNode<T>;
    if (net.isIPv4(address)) {
      const bits = ipv4Number(address);
      const prefix = c.family === 'ipv4' ? c.prefix : Math.max(0, c.prefix - 96);
      n = this.v4;
      for (let i = 0; i < prefix; i++) n = step(n, (bits >>> (31 - i)) & 1);
    } else {
      const bytes = ipv6Bytes(address);
      if (!bytes) return null;
      n = this.v6;
      for (let i = 0; i < c.prefix; i++) n = step(n, (bytes[i >> 3] >> (7 - (i & 7))) & 1);
    }
    return n;
  }

  /**
   * The first value, from the widest range holding `address` to the narrowest, that `accept` takes;
   * undefined when none does or the address is not one.
   */
  find(address: string, accept: (value: T) => boolean): T | undefined {
    if (this.size === 0) return undefined;
    const v4 = ipv4Number(address);
    if (v4 >= 0) return walkV4(this.v4, v4, accept);
    const plain = unmapIPv4(address.startsWith('[') ? address.slice(1, -1) : address);
    if (plain !== address && !plain.includes(':')) return this.find(plain, accept);
    const bytes = ipv6Bytes(plain);
    return bytes ? walk(this.v6, bytes, 128, accept) : undefined;
  }
}

function step<T>(n: TrieNode<T>, bit: number): TrieNode<T> {
  if (bit === 0) return (n.zero ??= node());
  return (n.one ??= node());
}

function accepted<T>(values: T[] | null, accept: (value: T) => boolean): T | undefined {
  if (values === null) return undefined;
  for (const v of values) if (accept(v)) return v;
  return undefined;
}

/** The walk's scratch for an IPv4 address: one buffer reused, so a lookup allocates nothing. */
const V4_BYTES = new Uint8Array(4);

function walkV4<T>(root: TrieNode<T>, value: number, accept: (value: T) => boolean): T | undefined {
  V4_BYTES[0] = value >>> 24;
  V4_BYTES[1] = (value >>> 16) & 255;
  V4_BYTES[2] = (value >>> 8) & 255;
  V4_BYTES[3] = value & 255;
  return walk(root, V4_BYTES, 32, accept);
}

/** Down the trie along the address's `bits` bits, offering the values of each range passed to `accept`. */
function walk<T>(root: TrieNode<T>, bytes: Uint8Array, bits: number, accept: (value: T) => boolean): T | undefined {
  let n: TrieNode<T> | null = root;
  for (let i = 0; n !== null; i++) {
    const hit = accepted(n.values, accept);
    if (hit !== undefined) return hit;
    if (i === bits) break;
    n = ((bytes[i >> 3] >> (7 - (i & 7))) & 1) === 0 ? n.zero : n.one;
  }
  return undefined;
}
