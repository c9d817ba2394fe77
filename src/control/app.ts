import express from 'express';
import type { Metrics } from '../metrics';
import type { ReportView, StatusReport } from './status-data';
import { EVERY_TOOL, QueryError, anyFilter, parseStatusQuery, selectReport, selectTools, type RawQuery, type StatusQuery } from './status-filter';
import { PAGE_QUERY, REFRESH_SECONDS, STATUS_PAGE_CSP, renderStatusPage } from './status-page';

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
  status?: (view: ReportView) => Promise<StatusReport>;
}

/** The filter parameters of a request's URL (tool, state, sort, limit, offset), as they came. */
function rawQuery(req: express.Request): RawQuery {
  const p = new URL(req.originalUrl, 'http://control.invalid').searchParams;
  const one = (name: string) => p.get(name) ?? undefined;
  return { tool: one('tool'), state: p.getAll('state'), sort: one('sort'), limit: one('limit'), offset: one('offset') };
}

function badQuery(res: express.Response, field: string, message: string): void {
  res.status(400).json({ error: { code: `invalid_${field}`, message, field } });
}

/** The filter of a request, or null once a 400 naming the field has been answered. */
function queryOf(raw: RawQuery, res: express.Response, defaults: Readonly<StatusQuery>): StatusQuery | null {
  try {
    return parseStatusQuery(raw, defaults);
  } catch (err) {
    if (!(err instanceof QueryError)) throw err;
    badQuery(res, err.field, err.message);
    return null;
  }
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
        badQuery(res, 'refresh', 'refresh must be a whole number of seconds in 1..3600');
        return;
      }
      const query = queryOf(rawQuery(req), res, PAGE_QUERY);
      if (!query) return;
      const report = await status({ host: req.headers.host });
      const html = renderStatusPage(report, { query, ...selectTools(report.tools, query) }, refresh);
      res.setHeader('Content-Security-Policy', STATUS_PAGE_CSP);
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.type('html').send(html);
    });
    app.get('/status.json', async (req, res) => {
      const raw = rawQuery(req);
      const query = queryOf(raw, res, EVERY_TOOL);
      if (!query) return;
      const report = await status({ host: req.headers.host });
      res.setHeader('Cache-Control', 'no-store');
      res.json(anyFilter(raw) ? selectReport(report, query) : report);
    });
  }

  for (const router of opts.routers) app.use(router);
  return app;
}
