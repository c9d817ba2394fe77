import dns from 'node:dns';
import net from 'node:net';
import type { ListeningSockets } from './listening-sockets';
import { NetworkSet, isNeverAllowed, unmapIPv4 } from './networks';

/** The error a connection gets when its address is not one the proxy may open. */
export const ADDRESS_NOT_ALLOWED = 'ERR_ADDRESS_NOT_ALLOWED';
/** The error a connection by name gets when the address:port it resolved to is someone else's (`EndpointOwner`). */
export const ADDRESS_ASSIGNED_ELSEWHERE = 'ERR_ADDRESS_ASSIGNED_ELSEWHERE';

/**
 * Whether `address`:`port`, which the name `hostname` resolved to as a connection was made, belongs to
 * someone the name does not stand for: the route table, on a floor above, says who holds which
 * address:port. Asked of names only: an IP literal was judged where it was registered.
 */
export type EndpointOwner = (hostname: string, address: string, port: number) => boolean;

type LookupAll = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;
type LookupOne = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

function notAllowed(hostname: string, address: string, port: number | null): NodeJS.ErrnoException {
  const why = port === null ? `${address}, which is outside the allowed networks` : `${address}:${port}, which is switchboard itself`;
  const err: NodeJS.ErrnoException = new Error(`${hostname} resolved to ${why}`);
  err.code = ADDRESS_NOT_ALLOWED;
  return err;
}

function assignedElsewhere(hostname: string, address: string, port: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${hostname} resolved to ${address}:${port}, which another tool holds`);
  err.code = ADDRESS_ASSIGNED_ELSEWHERE;
  return err;
}

/**
 * The registry's address rule (allowedNetworks, never link-local or metadata) applied again when the proxy
 * connects. The registry judged a name by what it resolved to then; DNS may answer differently now
 * (rebinding), and a store entry may predate a narrower allowedNetworks. IP literals are checked by
 * `allows` (Node skips the lookup for them); names by `lookup`, which agents and net.connect call for
 * every new connection.
 *
 * With `self` (the proxy's own listening sockets) it also refuses to connect to switchboard itself: in a
 * split deployment the registry cannot know the proxies' ports, so a backend URL may name one.
 * `allowsEndpoint` judges a literal with its port, `lookupTo(port)` a name.
 *
 * With `owner` it also refuses a name that now resolves to an address:port another tool holds: the
 * registry keyed the name by the addresses it had at registration, and a rebound name would otherwise
 * reach another tool's backend. Judged by `lookupTo(port)` (and `refusePeer`, given the name); literals
 * never are, so they cost nothing here.
 */
export class ConnectGuard {
  private readonly allowed: NetworkSet;
  private readonly resolve: net.LookupFunction;
  private readonly self: ListeningSockets | null;
  private readonly owner: EndpointOwner | null;
  private readonly portLookups = new Map<number, net.LookupFunction>();

  constructor(
    allowedNetworks: string[],
    resolve: net.LookupFunction = dns.lookup as unknown as net.LookupFunction,
    self: ListeningSockets | null = null,
    owner: EndpointOwner | null = null,
  ) {
    this.allowed = new NetworkSet(allowedNetworks);
    this.resolve = resolve;
    this.self = self;
    this.owner = owner;
  }

  allows(address: string): boolean {
    const a = unmapIPv4(address);
    return !isNeverAllowed(a) && this.allowed.has(a);
  }

  /** `allows`, and the address:port is none of switchboard's own listening sockets. */
  allowsEndpoint(address: string, port: number): boolean {
    return this.allows(address) && !(this.self?.reaches(address, port) ?? false);
  }

  /**
   * Why a connection just made must not be used: its peer is switchboard's own listening socket, or, for a
   * connection made by the name `hostname`, an address:port another tool holds. For a connector whose
   * lookup may not have been told the port (`lookupTo`).
   */
  refusePeer(socket: net.Socket, hostname?: string): NodeJS.ErrnoException | null {
    const { remoteAddress, remotePort } = socket;
    if (remoteAddress === undefined || remotePort === undefined) return null;
    if (this.self?.reaches(remoteAddress, remotePort)) return notAllowed('the backend', remoteAddress, remotePort);
    if (hostname === undefined || !this.owner || net.isIP(hostname) !== 0 || !this.owner(hostname, remoteAddress, remotePort)) return null;
    return assignedElsewhere(hostname, remoteAddress, remotePort);
  }

  /**
   * A drop-in for dns.lookup that fails with ERR_ADDRESS_NOT_ALLOWED when any address the name stands for
   * is not allowed: one bad address is enough to refuse, as at registration (so every address is asked
   * for, whatever the caller wanted). Answers in the caller's shape: one address, or all of them (`all:
   * true`, which net uses for happy eyeballs).
   */
  readonly lookup: net.LookupFunction = this.lookupFor(null);

  /**
   * `lookup` for connections to `port`: it also refuses a name that stands for switchboard itself there,
   * or for an address another tool holds on that port.
   */
  lookupTo(port: number): net.LookupFunction {
    if (!this.self && !this.owner) return this.lookup;
    let found = this.portLookups.get(port);
    if (!found) this.portLookups.set(port, (found = this.lookupFor(port)));
    return found;
  }

  private lookupFor(port: number | null): net.LookupFunction {
    return (hostname, options, callback) => {
      const all = (options as dns.LookupOptions | undefined)?.all === true;
      this.resolve(hostname, { ...options, all: true }, ((err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
        if (err) return all ? (callback as unknown as LookupAll)(err, []) : (callback as LookupOne)(err, '', 0);
        const list = Array.isArray(address) ? address : [{ address, family: family ?? net.isIP(address) }];
        const e = this.refusal(hostname, list, port);
        if (e) return all ? (callback as unknown as LookupAll)(e, []) : (callback as LookupOne)(e, '', 0);
        if (all) return (callback as unknown as LookupAll)(null, list);
        (callback as LookupOne)(null, list[0].address, list[0].family);
      }) as Parameters<net.LookupFunction>[2]);
    };
  }

  /** Why the name's answer must not be connected to (on `port`, when known); null when it may. */
  private refusal(hostname: string, list: dns.LookupAddress[], port: number | null): NodeJS.ErrnoException | null {
    const bad = list.find((a) => !this.allows(a.address));
    if (bad || list.length === 0) return notAllowed(hostname, bad?.address ?? 'nothing', null);
    if (port === null) return null;
    const own = list.find((a) => this.self?.reaches(a.address, port));
    if (own) return notAllowed(hostname, own.address, port);
    const owner = this.owner;
    const taken = owner ? list.find((a) => owner(hostname, a.address, port)) : undefined;
    return taken ? assignedElsewhere(hostname, taken.address, port) : null;
  }
}
