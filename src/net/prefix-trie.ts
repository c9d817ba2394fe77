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

/** A range as the trie keys it: its family's root, the address's bytes and how many of their bits count. */
interface RangeKey {
  v6: boolean;
  bytes: Uint8Array;
  bits: number;
}

function v4Bytes(value: number): Uint8Array {
  return Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
}

/** The key of a range ("10.0.0.0/8", "2001:db8::/32", one address; IPv4-mapped IPv6 as IPv4); null: not a range. */
function rangeKey(cidr: string): RangeKey | null {
  const slash = cidr.indexOf('/');
  const v4 = ipv4Number(slash < 0 ? cidr : cidr.slice(0, slash));
  if (v4 >= 0) {
    // The common case of a long ban list, without a second parse.
    const rest = slash < 0 ? '32' : cidr.slice(slash + 1);
    const prefix = /^\d{1,2}$/.test(rest) ? Number(rest) : NaN;
    return prefix >= 0 && prefix <= 32 ? { v6: false, bytes: v4Bytes(v4), bits: prefix } : null;
  }
  const c = parseCidr(cidr);
  if (!c) return null;
  const address = unmapIPv4(c.address);
  if (net.isIPv4(address)) return { v6: false, bytes: v4Bytes(ipv4Number(address)), bits: c.family === 'ipv4' ? c.prefix : Math.max(0, c.prefix - 96) };
  const bytes = ipv6Bytes(address);
  return bytes ? { v6: true, bytes, bits: c.prefix } : null;
}

function bitOf(bytes: Uint8Array, i: number): number {
  return (bytes[i >> 3] >> (7 - (i & 7))) & 1;
}

/** A copy of the path to `key`'s node with `change` applied to the copy of that node; the rest is shared. */
function copyPath<T>(root: TrieNode<T>, key: RangeKey, change: (n: TrieNode<T>) => void): TrieNode<T> {
  const top: TrieNode<T> = { ...root };
  let n = top;
  for (let i = 0; i < key.bits; i++) {
    const bit = bitOf(key.bytes, i);
    const next: TrieNode<T> = { ...((bit === 0 ? n.zero : n.one) ?? node<T>()) };
    if (bit === 0) n.zero = next;
    else n.one = next;
    n = next;
  }
  change(n);
  return top;
}

/**
 * Address ranges (CIDR) and a value for each, answering which ranges hold an address by walking the
 * address's bits: at most 32 (IPv4) or 128 (IPv6) steps whatever the number of ranges, where a list or
 * node's BlockList checks every rule in turn. A trie handed out is never changed: `add` builds one before
 * it is, `with` and `without` answer a new trie that copies only the path to the range changed (33 or 129
 * nodes at most) and shares the rest, so a ban added to 10,000 costs a path, not a rebuild.
 */
export class PrefixTrie<T> {
  private v4: TrieNode<T> = node();
  private v6: TrieNode<T> = node();
  size = 0;

  /** Adds a range while the trie is being built; false when it is not a range. */
  add(cidr: string, value: T): boolean {
    const key = rangeKey(cidr);
    if (!key) return false;
    let n = key.v6 ? this.v6 : this.v4;
    for (let i = 0; i < key.bits; i++) n = step(n, bitOf(key.bytes, i));
    (n.values ??= []).push(value);
    this.size++;
    return true;
  }

  /** A new trie with `value` on the range as well; this one when `cidr` is not a range. */
  with(cidr: string, value: T): PrefixTrie<T> {
    const key = rangeKey(cidr);
    if (!key) return this;
    return this.changed(key, 1, (n) => (n.values = n.values ? [...n.values, value] : [value]));
  }

  /** A new trie without `value` on the range (by identity); this one when it is not there. */
  without(cidr: string, value: T): PrefixTrie<T> {
    const key = rangeKey(cidr);
    if (!key) return this;
    let found = false;
    const next = this.changed(key, -1, (n) => {
      const kept = n.values?.filter((v) => v !== value) ?? null;
      found = kept !== null && kept.length !== n.values!.length;
      n.values = kept && kept.length > 0 ? kept : null;
    });
    return found ? next : this;
  }

  private changed(key: RangeKey, delta: number, change: (n: TrieNode<T>) => void): PrefixTrie<T> {
    const next = new PrefixTrie<T>();
    next.v4 = key.v6 ? this.v4 : copyPath(this.v4, key, change);
    next.v6 = key.v6 ? copyPath(this.v6, key, change) : this.v6;
    next.size = this.size + delta;
    return next;
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
