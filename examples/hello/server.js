'use strict';
// The smallest tool: `switchboard run` gives it its port in PORT and registers it once it listens there.
// It listens on 127.0.0.1 only, the address the launcher registers by default (`--host`).
const http = require('node:http');

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('examples/hello: PORT is not set; start me with: npx switchboard run --tool hello -- node examples/hello/server.js');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`hello from port ${port}: ${req.method} ${req.url}\n`);
});
server.listen(port, '127.0.0.1');

// The launcher deregisters first and forwards SIGTERM after: requests still on their way are answered.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
