import type { Roles } from './app';
import { parseFlags } from './client/flags';
import { ENV_KEYS } from './config/env';
import { ConfigError } from './config/errors';
import { createLogger } from './logger';
import { heartbeatCommand, runCommand } from './launcher/command';
import { asPortError, checkPorts, PortError } from './cli/ports';
import { statusCommand } from './cli/status';
import { blockCommand } from './cli/block';
import { tokenCommand } from './cli/token';
import { VERSION } from './version';

/** `words` joined by ", " in lines of at most `width` characters. */
function wrapped(words: string[], width: number): string {
  const lines = [''];
  for (const w of words) {
    const last = lines[lines.length - 1];
    if (last && last.length + w.length + 2 > width) lines.push(w);
    else lines[lines.length - 1] = last ? `${last}, ${w}` : w;
  }
  return lines.join(',\n');
}

const USAGE = `switchboard ${VERSION}: a self-healing reverse proxy with a port registry

usage:
  switchboard serve    [--config FILE] [--workers N]   proxy + registry (what npm start runs)
  switchboard proxy    [--config FILE] [--workers N]   the data plane only (needs REDIS_URL or sentinels)
  switchboard registry [--config FILE]   the control plane only (registration API, leases, expiry)
  switchboard token issue  --tool T [--registry URL] [--token-file PATH | --token ADMIN]   issue a tool token
  switchboard token revoke --tool T --id ID [--registry URL] [--token-file PATH | --token ADMIN]
  switchboard block add --id ID (--cidr CIDR | --user-agent REGEX) [--tool T] [--ttl S] [--reason TEXT] [--json] [--registry URL] [--token-file PATH | --token ADMIN]
                       ban an address range or a User-Agent pattern (every tool, or --tool's only)
  switchboard block list [--json] [--registry URL] [--token-file PATH | --token ADMIN]   the bans in force
  switchboard block remove --id ID [--registry URL] [--token-file PATH | --token ADMIN]   lift a ban
  switchboard status [--registry URL] [--token-file PATH | --token ADMIN] [--json] [--tool PATTERN] [--state STATE] [--sort KEY] [--limit N]
                       every tool (or those the filter selects): state, traffic, backends and assignments
  switchboard run --tool T [--registry URL] [--token-file PATH | --token TOKEN] [--ttl S] [--host H] [--port P] [--prefix PATH] [--restart [--restart-max-delay S]] -- COMMAND ARGS...
                       start COMMAND with PORT = the tool's assigned port, keep it registered while it runs;
                       one quoted string runs through sh -c: -- 'python3 -m http.server $PORT'
  switchboard heartbeat --tool T --url URL [--registry URL] [--token-file PATH | --token TOKEN] [--ttl S] [--id ID] [--prefix PATH]
                       keep a service started some other way registered until SIGTERM/SIGINT
  switchboard version
  switchboard --help   (or COMMAND --help)

tokens: --token-file PATH or SWITCHBOARD_TOKEN (SWITCHBOARD_ADMIN_TOKEN for admin commands) rather than
--token, which every user of the host sees in \`ps\`.

configuration: the defaults, then --config FILE or SWITCHBOARD_CONFIG, then the environment
(${wrapped(Object.keys(ENV_KEYS), 100)}). See README.md.
`;

export class UsageError extends Error {}

const ROLES: Record<string, Roles> = {
  serve: { proxy: true, registry: true },
  proxy: { proxy: true, registry: false },
  registry: { proxy: false, registry: true },
};

async function runServer(verb: string, args: string[]): Promise<void> {
  // Loaded here, not at the top: launchers and operator commands start faster and smaller without the
  // servers and the configuration's validator (Ajv). require, not import(): under tsx/cjs a dynamic
  // import() would bypass the TypeScript loader.
  const { startSwitchboard } = require('./app') as typeof import('./app');
  const { isClusterWorker, startPrimary, startWorker } = require('./cluster') as typeof import('./cluster');
  const { loadConfig, redactedConfig, tlsEnabled } = require('./config') as typeof import('./config');
  const { values } = parseFlags({ args, options: { config: { type: 'string' }, workers: { type: 'string' } }, strict: true, allowPositionals: false }, { config: 'FILE', workers: 'N' });
  const config = loadConfig({ file: values.config });
  const roles = ROLES[verb];
  const workers = values.workers === undefined ? 0 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0 || workers > 256) throw new UsageError(`--workers: must be an integer in 0..256, got "${values.workers}"`);
  if (workers > 0 && !roles.proxy) throw new UsageError('--workers: only `serve` and `proxy` run proxy workers');
  if (roles.proxy && !roles.registry && !config.redis.url && config.redis.sentinels.length === 0) {
    throw new ConfigError('REDIS_URL (redis.url): `switchboard proxy` runs apart from the registry and needs a shared Redis; use `switchboard serve` for the embedded store');
  }
  const logger = createLogger(config.log.level);
  let sb: { stop(): Promise<void>; reloadCertificates(): Promise<void> } | null = null;
  // Only with HTTPS on: otherwise SIGHUP keeps its default, ending the process, as before. Taken from
  // the start: a SIGHUP while the process starts (a worker the primary has just forked) must not end it,
  // and the certificates it may already have read are read again once it is up.
  let reloadWhenUp = false;
  if (tlsEnabled(config)) {
    process.on('SIGHUP', () => {
      logger.info({ event: 'signal', signal: 'SIGHUP' }, 'signal received: reloading certificates');
      if (sb) void sb.reloadCertificates();
      else reloadWhenUp = true;
    });
  }
  if (isClusterWorker()) {
    sb = await startWorker(config, logger);
  } else {
    logger.info({ event: 'config.loaded', config: redactedConfig(config) }, 'configuration loaded');
    if (roles.proxy && config.proxy.engine === 'http-proxy') {
      // Kept as a name so existing configurations still start; told once, here, not by each worker.
      logger.warn(
        { event: 'config.engine_retired', engine: 'http-proxy' },
        'proxy.engine "http-proxy" is retired: plain requests go through undici; WebSocket upgrades go through http-proxy, as with every engine',
      );
    }
    await checkPorts(config, roles);
    try {
      sb = workers > 0 ? await startPrimary(config, roles, workers, logger) : await startSwitchboard({ config, roles, logger });
    } catch (err) {
      throw asPortError(err, config, roles);
    }
  }
  const shutdown = (signal: string) => {
    logger.info({ event: 'signal', signal }, 'signal received');
    // Log lines still buffered are written out on 'exit' (src/log-batch.ts, pino's sonic-boom).
    sb.stop()
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error({ event: 'shutdown.failed', err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  if (reloadWhenUp) void sb.reloadCertificates();
}

/** `--help` (or -h) among a command's flags: the words after "--" are the child's, not ours. */
function asksHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

const COMMANDS = 'serve, proxy, registry, token, block, status, run, heartbeat, version';

export async function run(argv: string[]): Promise<number | null> {
  const [verb, ...rest] = argv;
  if (verb !== undefined && asksHelp(rest)) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (verb) {
    case 'serve':
    case 'proxy':
    case 'registry':
      await runServer(verb, rest);
      return null; // keeps running until a signal
    case 'token':
      return tokenCommand(rest);
    case 'block':
      return blockCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'heartbeat':
      return heartbeatCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      throw new UsageError(`a command is needed: ${COMMANDS}`);
    default:
      throw new UsageError(`unknown command "${verb}" (commands: ${COMMANDS})`);
  }
}

export function main(argv: string[]): void {
  run(argv).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof ConfigError) {
        process.stderr.write(`switchboard: configuration error: ${err.message}\n`);
        process.exit(2);
      }
      // One line saying what is wrong; the whole usage text would bury it (it is one --help away).
      if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`switchboard: ${(err as Error).message}\nsee 'switchboard --help'\n`);
        process.exit(2);
      }
      if (err instanceof PortError) {
        process.stderr.write(`switchboard: ${err.message}\n`);
        process.exit(1);
      }
      process.stderr.write(`switchboard: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main(process.argv.slice(2));
