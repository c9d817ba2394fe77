import net from 'node:net';
import type { Logger } from '../logger';
import { sleep } from './sleep';

const CONNECT_TIMEOUT_MS = 1000;
const POLL_MS = 100;
const REPORT_EVERY_MS = 30_000;

/** Whether host:port accepts a TCP connection right now. */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(CONNECT_TIMEOUT_MS, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Waits until host:port accepts a TCP connection: a backend is registered only once the proxy can reach
 * it. There is no deadline (some services take minutes to start); it ends when the signal aborts (the child
 * exited, the launcher is stopping), answering false, and says every 30 s that it is still waiting.
 * `whileWaiting` runs after each refused connection (the check for a child listening elsewhere).
 */
export async function waitForPort(host: string, port: number, signal: AbortSignal, logger: Logger, whileWaiting?: () => void): Promise<boolean> {
  const started = Date.now();
  let reported = started;
  while (!signal.aborted) {
    if (await accepts(host, port)) return !signal.aborted;
    whileWaiting?.();
    if (Date.now() - reported >= REPORT_EVERY_MS) {
      reported = Date.now();
      logger.warn({ event: 'port.waiting', host, port, waitedMs: reported - started }, 'child does not accept connections on its port yet');
    }
    await sleep(POLL_MS, signal);
  }
  return false;
}
