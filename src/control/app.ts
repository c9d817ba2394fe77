import express from 'express';
import type { Metrics } from '../metrics';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface ControlAppOptions {
  metrics: Metrics;
  /** Each role present in the process says whether it is ready. */
  readiness: Array<() => Promise<Readiness>>;
  /** Routers of the roles present (the registration API on registry processes). */
  routers: express.Router[];
  /** Overrides the exposition of `metrics` (the cluster primary renders the sum over its workers). */
  metricsText?: () => Promise<string>;
}

/** The operator port: health, readiness, metrics and, on registry processes, the registration API. */
export function createControlApp(opts: ControlAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', pid: process.pid, uptimeSeconds: Math.round(process.uptime()) });
  });

  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(opts.readiness.map((check) => check().catch((err: Error) => ({ ready: false, detail: { error: err.message } }))));
    const ready = results.every((r) => r.ready);
    res.status(ready ? 200 : 503).json({ ready, ...Object.assign({}, ...results.map((r) => r.detail)) });
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', opts.metrics.registry.contentType);
    res.send(opts.metricsText ? await opts.metricsText() : await opts.metrics.registry.metrics());
  });

  for (const router of opts.routers) app.use(router);
  return app;
}
