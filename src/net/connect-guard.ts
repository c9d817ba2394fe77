import dns from 'node:dns';
import net from 'node:net';
import { NetworkSet, isNeverAllowed, unmapIPv4 } from './networks';

/** The error a connection gets when its address is not one the proxy may open. */
export const ADDRESS_NOT_ALLOWED = 'ERR_ADDRESS_NOT_ALLOWED';

type LookupAll = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;
type LookupOne = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

function notAllowed(hostname: string, address: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${hostname} resolved to ${address}, which is outside the allowed networks`);
  err.code = ADDRESS_NOT_ALLOWED;
  return err;
}

/**
 * The registry's address rule (allowedNetworks, never link-local or metadata) applied again when the proxy
 * connects. The registry judged a name by what it resolved to then; DNS may answer differently now
 * (rebinding), and a store entry may predate a narrower allowedNetworks. IP literals are checked by
 * `allows` (Node skips the lookup for them); names by `lookup`, which agents and net.connect call for
 * every new connection.
 */
export class ConnectGuard {
  private readonly allowed: NetworkSet;
  private readonly resolve: net.LookupFunction;

  constructor(allowedNetworks: string[], resolve: net.LookupFunction = dns.lookup as unknown as net.LookupFunction) {
    this.allowed = new NetworkSet(allowedNetworks);
    this.resolve = resolve;
  }

  allows(address: string): boolean {
    const a = unmapIPv4(address);
    return !isNeverAllowed(a) && this.allowed.has(a);
  }

  /**
   * A drop-in for dns.lookup that fails with ERR_ADDRESS_NOT_ALLOWED when any address the name stands for
   * is not allowed: one bad address is enough to refuse, as at registration (so every address is asked
   * for, whatever the caller wanted). Answers in the caller's shape: one address, or all of them (`all:
   * true`, which net uses for happy eyeballs).
   */
  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    const all = (options as dns.LookupOptions | undefined)?.all === true;
    this.resolve(hostname, { ...options, all: true }, ((err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      if (err) return all ? (callback as unknown as LookupAll)(err, []) : (callback as LookupOne)(err, '', 0);
      const list = Array.isArray(address) ? address : [{ address, family: family ?? net.isIP(address) }];
      const bad = list.find((a) => !this.allows(a.address));
      if (bad || list.length === 0) {
        const e = notAllowed(hostname, bad?.address ?? 'nothing');
        return all ? (callback as unknown as LookupAll)(e, []) : (callback as LookupOne)(e, '', 0);
      }
      if (all) return (callback as unknown as LookupAll)(null, list);
      (callback as LookupOne)(null, list[0].address, list[0].family);
    }) as Parameters<net.LookupFunction>[2]);
  };
}
