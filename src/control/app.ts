import express from 'express';
import type { Metrics } from '../metrics';
import type { StatusReport } from './status-data';
import { REFRESH_SECONDS, renderStatusPage } from './status-page';

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
  /** The status page's data (GET / and GET /status.json); never blocks on a dead store. */
  status?: () => Promise<StatusReport>;
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

  const status = opts.status;
  if (status) {
    // No token needed: the control port is an operator port. The report holds no token or secret.
    app.get('/', async (req, res) => {
      const refresh = req.query.refresh === undefined ? REFRESH_SECONDS : Number(req.query.refresh);
      if (!Number.isInteger(refresh) || refresh < 1 || refresh > 3600) {
        res.status(400).json({ error: { code: 'invalid_refresh', message: 'refresh must be a whole number of seconds in 1..3600', field: 'refresh' } });
        return;
      }
      const html = renderStatusPage(await status(), refresh);
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.type('html').send(html);
    });
    app.get('/status.json', async (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(await status());
    });
  }

  for (const router of opts.routers) app.use(router);
  return app;
}
