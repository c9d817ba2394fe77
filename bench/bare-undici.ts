// Reference for bench/proxy.ts: an undici Pool streaming the backend's answer into the response. What
// Node can do as a proxy without http-proxy's per-request setup; no routing, no header rules, no log.
// With CERT and KEY (PEM files) it listens with TLS instead: bench/tls.ts's bare proxy.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);
const pool = new Pool(process.env.TARGET!, { connections: 256, pipelining: 1 });

const onRequest: http.RequestListener = (req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream({ path: req.url ?? '/', method: req.method as 'GET', headers, body: hasBody ? req : null }, ({ statusCode, headers: h }) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(statusCode, out);
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
};

const tls = process.env.CERT && process.env.KEY ? { cert: readFileSync(process.env.CERT), key: readFileSync(process.env.KEY) } : null;
(tls ? https.createServer(tls, onRequest) : http.createServer(onRequest)).listen(Number(process.env.PORT), '127.0.0.1');

// A clean exit on SIGTERM, so that --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));
