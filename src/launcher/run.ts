import os from 'node:os';
import { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import type { RunOptions } from './args';
import { AssignmentRefused, obtainPort, type PortChoice } from './assignment';
import { Child, exitStatus } from './child';
import { HeartbeatLoop } from './heartbeat-loop';
import { backendId, backendUrl, newInstance } from './identity';
import { portHolder, reportTaken } from './port-holder';
import { waitForPort } from './port-wait';
import { onSignals } from './signals';

/** The launcher's credentials stay with the launcher: the service it starts has no use for them. */
const WITHHELD_FROM_CHILD = ['SWITCHBOARD_TOKEN', 'SWITCHBOARD_ADMIN_TOKEN'];

function childEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
  for (const k of WITHHELD_FROM_CHILD) delete env[k];
  return env;
}

/** Signals that tell a child to stop; SIGHUP is forwarded too, but many services take it as "reload". */
const STOPPING_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * `switchboard run`: port assignment → check nothing listens there yet → child with PORT → wait until the
 * port accepts → lease kept alive for as long as the child lives → deregistration of that lease, if this
 * run still owns it. Answers the exit status the launcher should end with: the child's (128 + n for a
 * signal), 128 + n when a signal came before the child started, 1 when the registry refused the port
 * request for good or the port was already in use.
 */
export async function runLauncher(opts: RunOptions, baseLogger: Logger): Promise<number> {
  const client = new RegistryClient({ registry: opts.registry, token: opts.token });
  const instance = newInstance();
  const logger = baseLogger.child({ instance });
  const stopping = new AbortController();
  let stopSignal: NodeJS.Signals | null = null;
  let child: Child | null = null;
  let lease: HeartbeatLoop | null = null;
  const unsubscribe = onSignals((signal) => {
    logger.info({ event: 'signal', signal, forwarded: child !== null }, 'signal received');
    if (child) {
      // A stopping child's lease is not renewed any more: a successor started on the same backend id
      // meanwhile takes it over with its first heartbeat, and this run must not take it back.
      if (STOPPING_SIGNALS.includes(signal)) void lease?.stop();
      child.kill(signal);
    } else {
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
    const signalled = () => 128 + (os.constants.signals[stopSignal ?? 'SIGTERM'] ?? 0);
    if (!choice) return signalled();

    const { host, port } = choice;
    const holder = await portHolder({ client, tool: opts.tool, host, port });
    if (holder.kind !== 'free') {
      reportTaken(holder, { tool: opts.tool, host, port }, logger);
      return 1;
    }
    if (stopping.signal.aborted) return signalled();

    const own = new HeartbeatLoop({ client, tool: opts.tool, id: backendId(host, port), url: backendUrl(host, port), ttl: opts.ttl, instance, logger });
    lease = own;
    const started = new Child(opts.command, opts.args, childEnv(port), logger.child({ port }));
    child = started;
    const childGone = new AbortController();
    void started.exited.then(() => childGone.abort());

    // Only a child that accepted connections gets a lease; one that failed first leaves nothing to remove.
    if (await waitForPort(host, port, childGone.signal, logger)) {
      logger.info({ event: 'port.ready', host, port }, 'child accepts connections');
      own.start();
    }
    const exit = await started.exited;
    await own.deregister();
    return exitStatus(exit);
  } finally {
    unsubscribe();
  }
}
