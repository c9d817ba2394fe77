// Reference for bench/proxy.ts: http-proxy with a keep-alive agent and nothing else (no routing, no
// header rules, no log). The floor of what a proxy built on http-proxy can cost.
import http from 'node:http';
import httpProxy from 'http-proxy';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
const proxy = httpProxy.createProxyServer({ target: process.env.TARGET, agent });
proxy.on('error', (_err, _req, res) => {
  // `res` is a socket on WebSocket errors; the bench sends none.
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
});
http.createServer((req, res) => proxy.web(req, res)).listen(Number(process.env.PORT), '127.0.0.1');

// A clean exit on SIGTERM, so that --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));
