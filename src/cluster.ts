import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { startSwitchboard, type Roles, type Switchboard } from './app';
import { ConfigError, type Config } from './config';
import type { Logger } from './logger';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

interface MetricsRequest {
  type: 'switchboard:metrics';
  id: string;
}
interface MetricsReply {
  type: 'switchboard:metrics:reply';
  id: string;
  metrics: MetricsJson;
}

const WORKER_ENV = 'SWITCHBOARD_CLUSTER_WORKER';
const RESTART_DELAY_MS = 1000;

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1';
}

/**
 * A proxy worker of `--workers N`: the data plane only, on the proxy port the primary shares, with its own
 * snapshot. It answers the primary's metric requests so one scrape of the control port covers every worker.
 */
export async function startWorker(config: Config, logger: Logger): Promise<Switchboard> {
  const sb = await startSwitchboard({ config, roles: { proxy: true, registry: false }, logger, controlPort: false });
  process.on('message', (msg: MetricsRequest) => {
    if (msg?.type !== 'switchboard:metrics') return;
    void sb.metrics.registry.getMetricsAsJSON().then((metrics) => {
      const reply: MetricsReply = { type: 'switchboard:metrics:reply', id: msg.id, metrics: metrics as MetricsJson };
      process.send?.(reply);
    });
  });
  return sb;
}

/**
 * The primary of `--workers N`: forks the proxy workers (restarting any that die), and serves the control
 * port itself (the registry too, for `serve`). Workers cannot share the embedded store, so this needs Redis.
 * The workers share the proxy's ports, the HTTPS one too: each does its own TLS.
 */
export async function startPrimary(
  config: Config,
  roles: Roles,
  workers: number,
  logger: Logger,
): Promise<{ stop(): Promise<void>; reloadCertificates(): Promise<void> }> {
  if (!config.redis.url && config.redis.sentinels.length === 0) {
    throw new ConfigError('REDIS_URL (redis.url): --workers needs a shared Redis; the embedded store lives in one process');
  }
  let stopping = false;
  const live = new Set<Worker>();
  const listening = new Set<Worker>();

  const fork = () => {
    const w = cluster.fork({ [WORKER_ENV]: '1' });
    live.add(w);
    w.on('listening', () => listening.add(w));
    w.on('exit', (code, signal) => {
      live.delete(w);
      listening.delete(w);
      if (stopping) return;
      logger.error({ event: 'worker.exit', pid: w.process.pid, code, signal }, 'proxy worker died; starting a new one');
      setTimeout(() => !stopping && fork(), RESTART_DELAY_MS).unref();
    });
  };
  for (let i = 0; i < workers; i++) fork();

  const metricsText = async (): Promise<string> => {
    const replies = await Promise.all([...live].map((w) => askMetrics(w)));
    const own = (await sb.metrics.registry.getMetricsAsJSON()) as MetricsJson;
    return AggregatorRegistry.aggregate([own, ...replies.filter((r): r is MetricsJson => r !== null)]).metrics();
  };

  const sb = await startSwitchboard({
    config,
    roles: { proxy: false, registry: roles.registry },
    logger,
    defaultMetrics: true,
    metricsText,
    readiness: [
      async () => ({
        ready: listening.size > 0,
        detail: { workers: { wanted: workers, running: live.size, listening: listening.size } },
      }),
    ],
  });

  return {
    // Each worker serves HTTPS with certificates of its own: each reloads them on its own SIGHUP.
    async reloadCertificates() {
      for (const w of live) w.process.kill('SIGHUP');
    },
    async stop() {
      stopping = true;
      // Each worker drains its own in-flight requests on SIGTERM; the primary waits for them.
      await Promise.all(
        [...live].map(
          (w) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => {
                w.process.kill('SIGKILL');
                resolve();
              }, config.proxy.drainTimeoutMs + 5000);
              w.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              w.process.kill('SIGTERM');
            }),
        ),
      );
      await sb.stop();
    },
  };
}

function askMetrics(w: Worker, timeoutMs = 2000): Promise<MetricsJson | null> {
  return new Promise((resolve) => {
    const id = randomUUID();
    const onMessage = (msg: MetricsReply) => {
      if (msg?.type !== 'switchboard:metrics:reply' || msg.id !== id) return;
      done(msg.metrics);
    };
    const done = (v: MetricsJson | null) => {
      clearTimeout(t);
      w.off('message', onMessage);
      resolve(v);
    };
    // A worker that does not answer (busy, dying) is left out of this scrape rather than failing it.
    const t = setTimeout(() => done(null), timeoutMs);
    w.on('message', onMessage);
    try {
      w.send({ type: 'switchboard:metrics', id } satisfies MetricsRequest);
    } catch {
      done(null);
    }
  });
}
