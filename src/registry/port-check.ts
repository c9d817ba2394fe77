import net from 'node:net';

/**
 * Whether something accepts TCP connections on address:port within `timeoutMs`. A port the registry is
 * about to hand out must be free: a tool told to listen where another process already does cannot bind,
 * and the proxy would route the tool's users to that other process. No answer in time counts as free:
 * nothing accepted.
 */
export function acceptsConnections(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const finish = (accepted: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(accepted);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}
