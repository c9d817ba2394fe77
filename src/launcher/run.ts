import { RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import type { RunOptions } from './args';
import { AssignmentRefused, obtainPort, type PortChoice } from './assignment';
import { Backoff } from './backoff';
import { Child, exitStatus, type ChildExit } from './child';
import { HeartbeatLoop } from './heartbeat-loop';
import { backendId, backendUrl, newInstance } from './identity';
import { portHolder, reportTaken } from './port-holder';
import { LAUNCHER_PID_ENV } from './port-listener';
import { waitForPort } from './port-wait';
import { onSignals, STOPPING_SIGNALS, stopStatus } from './signals';
import { sleep } from './sleep';
import { WrongPortWatch } from './wrong-port';

/** The launcher's credentials stay with the launcher: the service it starts has no use for them. */
const WITHHELD_FROM_CHILD = ['SWITCHBOARD_TOKEN', 'SWITCHBOARD_ADMIN_TOKEN'];

function childEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), [LAUNCHER_PID_ENV]: String(process.pid) };
  for (const k of WITHHELD_FROM_CHILD) delete env[k];
  return env;
}

/** First delay of `--restart`; it doubles per restart up to --restart-max-delay. */
const RESTART_BASE_MS = 500;
/** A child that ran this long was not crash-looping: the delay before its restart starts over from the base. */
const RESTART_RESET_AFTER_MS = 10_000;
/**
 * How long a stop signal waits for the deregistration before it is forwarded anyway: a registry that does
 * not answer must not delay a stop by more (the lease then lapses by itself).
 */
const STOP_DEREGISTER_BUDGET_MS = 1000;

/**
 * `switchboard run`: port assignment → check nothing listens there yet → child with PORT → wait until the
 * port accepts → lease kept alive for as long as the child lives → deregistration of that lease, if this
 * run still owns it. With --restart a child that exits on its own is started again on the same port (same
 * backend id and instance, so the same route) after a capped exponential backoff. Answers the exit status
 * the launcher should end with: the child's (128 + n for a signal); 0 when SIGTERM or SIGINT stopped it
 * (forwarded to the child, or before the child started or between two runs of it: stopStatus); 128 + n for
 * another signal then; 1 when the registry refused the port request for good or the port was already in use.
 */
export async function runLauncher(opts: RunOptions, baseLogger: Logger): Promise<number> {
  const client = new RegistryClient({ registry: opts.registry, token: opts.token });
  const instance = newInstance();
  const logger = baseLogger.child({ instance });
  const stopping = new AbortController();
  let stopSignal: NodeJS.Signals | null = null;
  /** The child running now; null before it starts and between two runs. */
  let child: Child | null = null;
  let lease: HeartbeatLoop | null = null;
  /** The deregistration a stop signal started before it was forwarded: true once the registry was told. */
  let deregisteredForStop: Promise<boolean> | null = null;
  /** The stop signal forwarded to the child. */
  let forwardedStop: NodeJS.Signals | null = null;
  const unsubscribe = onSignals((signal) => {
    logger.info({ event: 'signal', signal, forwarded: child !== null }, 'signal received');
    const running = child;
    if (running && STOPPING_SIGNALS.includes(signal)) {
      // Deregistered before the child hears of it: proxies stop sending it requests while it still answers
      // those on their way, and hold new ones for its successor (proxy.holdMs). The lease is renewed no
      // more, so a successor on the same backend id takes it over with its first heartbeat for good.
      forwardedStop = signal;
      deregisteredForStop = lease ? lease.deregister(STOP_DEREGISTER_BUDGET_MS) : Promise.resolve(true);
      void deregisteredForStop.then(() => running.kill(signal));
    } else if (running) {
      running.kill(signal);
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
    const signalled = () => stopStatus(stopSignal ?? 'SIGTERM', null);
    if (!choice) return signalled();

    const { host, port } = choice;
    const holder = await portHolder({ client, tool: opts.tool, host, port });
    if (holder.kind !== 'free') {
      reportTaken(holder, { tool: opts.tool, host, port }, logger);
      return 1;
    }
    if (stopping.signal.aborted) return signalled();

    /** One run of the child, its lease included; answers how it ended and how long it ran. */
    const runChild = async (restarts: number): Promise<{ exit: ChildExit; ranMs: number }> => {
      const own = new HeartbeatLoop({
        client,
        tool: opts.tool,
        id: backendId(host, port),
        url: backendUrl(host, port),
        ttl: opts.ttl,
        instance,
        restarts: opts.restart ? restarts : undefined,
        prefix: opts.prefix,
        logger,
      });
      lease = own;
      // Taken before the child starts: sockets listening already are not the child's.
      const wrongPort = new WrongPortWatch(port, logger);
      const started = new Child(opts.command, opts.args, childEnv(port), logger.child({ port }));
      const since = Date.now();
      child = started;
      const childGone = new AbortController();
      void started.exited.then(() => childGone.abort());
      // Only a child that accepted connections gets a lease; one that failed first leaves nothing to remove.
      const checkElsewhere = () => started.pid !== undefined && wrongPort.check(started.pid);
      if (await waitForPort(host, port, childGone.signal, logger, checkElsewhere)) {
        logger.info({ event: 'port.ready', host, port }, 'child accepts connections');
        own.start();
      }
      const exit = await started.exited;
      child = null;
      // A child that exited on its own: deregistered at once, so proxies hold its requests for the next run
      // instead of sending them to a closed port. After a stop signal: only if the early one failed.
      if (!(await (deregisteredForStop ?? Promise.resolve(false)))) await own.deregister();
      return { exit, ranMs: Date.now() - since };
    };

    const backoff = new Backoff(RESTART_BASE_MS, opts.restartMaxDelayMs);
    for (let restarts = 0; ; restarts++) {
      const { exit, ranMs } = await runChild(restarts);
      if (deregisteredForStop) return stopStatus(forwardedStop, exit);
      if (!opts.restart) return exitStatus(exit);
      if (stopping.signal.aborted) return signalled();
      if (ranMs >= RESTART_RESET_AFTER_MS) backoff.reset();
      const delayMs = backoff.next();
      logger.warn({ event: 'child.restarting', status: exitStatus(exit), restarts: restarts + 1, delayMs, ranMs }, 'child exited on its own; starting it again');
      if (!(await sleep(delayMs, stopping.signal))) return signalled();
    }
  } finally {
    unsubscribe();
  }
}
