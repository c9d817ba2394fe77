import net from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128). Null when it is neither. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bits, ...rest] = text.split('/');
  if (rest.length) return null;
  const v = net.isIP(addr);
  if (!v) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address: addr, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * An IPv4 address hidden in an IPv6 spelling (::ffff:a.b.c.d or ::ffff:XXXX:XXXX) is judged as the IPv4
 * address it is, so the mapped form cannot slip past an IPv4 rule.
 */
export function unmapIPv4(address: string): string {
  // An IPv4 address (the common peer) has no colon: the two patterns below are for IPv6 spellings only.
  if (!address.includes(':')) return address;
  const lower = address.toLowerCase();
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted && net.isIPv4(dotted[1])) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return address;
}

/** A set of CIDR ranges, answering membership for IPv4 and IPv6 addresses. */
export class NetworkSet {
  private readonly list = new net.BlockList();

  constructor(readonly ranges: string[]) {
    for (const r of ranges) {
      const c = parseCidr(r);
      if (!c) throw new Error(`not a CIDR range: ${r}`);
      this.list.addSubnet(c.address, c.prefix, c.family);
    }
  }

  has(address: string): boolean {
    const a = unmapIPv4(address.replace(/^\[|\]$/g, ''));
    const v = net.isIP(a);
    if (!v) return false;
    return this.list.check(a, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** Link-local and metadata addresses are refused whatever allowedNetworks says. */
const NEVER = new NetworkSet(['169.254.0.0/16', 'fe80::/10', '0.0.0.0/8', '::/128', '224.0.0.0/4', 'ff00::/8']);

export function isNeverAllowed(address: string): boolean {
  return NEVER.has(address);
}

export function isLoopback(address: string): boolean {
  const a = unmapIPv4(address.replace(/^\[|\]$/g, ''));
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
}
