import net from 'node:net';
import os from 'node:os';
import { canonicalHost } from './host-names';
import { isLoopback, unmapIPv4 } from './networks';

/**
 * The addresses a socket bound to `bindHost` is reached on besides loopback: every address of this machine
 * when bound to a wildcard, or to a name (it stands for one of them, which one is not known without a
 * lookup); the address itself otherwise.
 */
function boundAddresses(bindHost: string): Set<string> {
  const out = new Set<string>();
  const c = canonicalHost(bindHost);
  if (c && net.isIP(c) && c !== '0.0.0.0' && c !== '::') {
    out.add(c);
    return out;
  }
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) out.add(canonicalHost(info.address) ?? info.address);
  }
  return out;
}

/**
 * The ports switchboard listens on (proxy and control) on its bind address: a backend there is switchboard
 * itself, and forwarding to it would loop requests through the proxy or hand the public port the control
 * port. The registry refuses such backend URLs; the proxy refuses to connect to them, since in a split
 * deployment the registry does not know the proxies' ports. Loopback always counts: a port taken on
 * loopback by another process than switchboard is too rare to weigh against a loop.
 */
export class ListeningSockets {
  private readonly ports = new Set<number>();
  private readonly addresses: Set<string>;

  constructor(bindHost: string, ports: number[] = []) {
    this.addresses = boundAddresses(bindHost);
    for (const p of ports) this.add(p);
  }

  /** A port switchboard listens on (a configured one, or the one the kernel picked for port 0). */
  add(port: number): void {
    if (port > 0) this.ports.add(port);
  }

  /** Whether a connection to address:port reaches one of these sockets. */
  reaches(address: string, port: number): boolean {
    if (!this.ports.has(port)) return false;
    const a = unmapIPv4(address);
    return isLoopback(a) || this.addresses.has(canonicalHost(a) ?? a);
  }
}
