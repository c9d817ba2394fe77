// The backend of bench/proxy.ts: a node:http server answering ~100 bytes, on every port of PORTS
// (comma-separated). The header tells a proxied answer of this backend from a proxy's own error page.
import http from 'node:http';

const BODY = Buffer.from(`${'{"ok":true,"pad":"'.padEnd(96, 'x')}"}\n`);

function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  // Drain a request body, if any, before answering: a keep-alive connection must stay in sync.
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length, 'x-bench-backend': '1' });
  res.end(BODY);
}

for (const port of (process.env.PORTS ?? '').split(',').filter(Boolean)) {
  const server = http.createServer(answer);
  // Longer than any proxy's idle pool timeout: the proxy, not the backend, closes idle connections.
  server.keepAliveTimeout = 65_000;
  server.listen(Number(port), '127.0.0.1');
}
