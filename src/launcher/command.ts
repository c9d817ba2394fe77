import pino from 'pino';
import { DEFAULTS } from '../config/schema';
import { createLogger, type Logger } from '../logger';
import { parseHeartbeatArgs, parseRunArgs } from './args';
import { heartbeatService } from './heartbeat-command';
import { runLauncher } from './run';

/**
 * Launcher logs go to stderr, synchronously: stdout belongs to the child, and the last lines (the child's
 * exit, the deregistration) must be written before the process ends.
 */
function launcherLogger(fields: Record<string, unknown>): Logger {
  const level = process.env.SWITCHBOARD_LOG_LEVEL ?? DEFAULTS.log.level;
  return createLogger(level, pino.destination({ dest: 2, sync: true })).child({ component: 'launcher', ...fields });
}

/** Without userinfo: a registry URL may carry credentials, log lines must not. */
function loggable(registry: string): string {
  const u = new URL(registry);
  u.username = '';
  u.password = '';
  return u.toString();
}

export async function runCommand(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv);
  const logger = launcherLogger({ tool: opts.tool });
  logger.info({ event: 'launcher.start', registry: loggable(opts.registry), host: opts.host, ttl: opts.ttl, command: opts.command }, 'launcher starting');
  return runLauncher(opts, logger);
}

export async function heartbeatCommand(argv: string[]): Promise<number> {
  const opts = parseHeartbeatArgs(argv);
  const logger = launcherLogger({ tool: opts.tool });
  logger.info({ event: 'heartbeat.start', registry: loggable(opts.registry), url: opts.url, ttl: opts.ttl }, 'heartbeat starting');
  return heartbeatService(opts, logger);
}
