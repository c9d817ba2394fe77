import os from 'node:os';
import { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import type { RunOptions } from './args';
import { AssignmentRefused, obtainPort, type PortChoice } from './assignment';
import { Child, exitStatus } from './child';
import { HeartbeatLoop } from './heartbeat-loop';
import { backendId, backendUrl } from './identity';
import { waitForPort } from './port-wait';
import { onSignals } from './signals';

/** The launcher's credentials stay with the launcher: the service it starts has no use for them. */
const WITHHELD_FROM_CHILD = ['SWITCHBOARD_TOKEN', 'SWITCHBOARD_ADMIN_TOKEN'];

function childEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
  for (const k of WITHHELD_FROM_CHILD) delete env[k];
  return env;
}

/**
 * `switchboard run`: port assignment → child with PORT → wait until the port accepts → lease kept alive
 * for as long as the child lives → deregistration. Answers the exit status the launcher should end with:
 * the child's (128 + n for a signal), 128 + n when a signal came before the child started, 1 when the
 * registry refused the port request for good.
 */
export async function runLauncher(opts: RunOptions, logger: Logger): Promise<number> {
  const client = new RegistryClient({ registry: opts.registry, token: opts.token });
  const stopping = new AbortController();
  let stopSignal: NodeJS.Signals | null = null;
  let child: Child | null = null;
  const unsubscribe = onSignals((signal) => {
    logger.info({ event: 'signal', signal, forwarded: child !== null }, 'signal received');
    if (child) child.kill(signal);
    else {
      stopSignal = signal;
      stopping.abort();
    }
  });
  try {
    let choice: PortChoice | null;
    try {
      choice = await obtainPort({ client, tool: opts.tool, host: opts.host, fallbackPort: opts.fallbackPort, logger, signal: stopping.signal });
    } catch (err) {
      if (err instanceof AssignmentRefused) return 1;
      throw err;
    }
    if (!choice) return 128 + (os.constants.signals[stopSignal ?? 'SIGTERM'] ?? 0);

    const { host, port } = choice;
    const id = backendId(host, port);
    const url = backendUrl(host, port);
    const started = new Child(opts.command, opts.args, childEnv(port), logger.child({ port }));
    child = started;
    const childGone = new AbortController();
    void started.exited.then(() => childGone.abort());

    const lease = new HeartbeatLoop({ client, tool: opts.tool, id, url, ttl: opts.ttl, logger });
    if (await waitForPort(host, port, childGone.signal, logger)) {
      logger.info({ event: 'port.ready', host, port }, 'child accepts connections');
      lease.start();
    }
    const exit = await started.exited;
    await lease.deregister();
    return exitStatus(exit);
  } finally {
    unsubscribe();
  }
}
