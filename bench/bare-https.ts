// Reference for bench/tls.ts: node:https answering every request itself (100 bytes), no forwarding. What
// the runtime's TLS costs a connection before a proxy does anything: the floor under switchboard's TLS port.
import { readFileSync } from 'node:fs';
import https from 'node:https';

const BODY = Buffer.alloc(100, 'x');

https
  .createServer({ cert: readFileSync(process.env.CERT!), key: readFileSync(process.env.KEY!) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BODY.length) });
    res.end(BODY);
  })
  .listen(Number(process.env.PORT), '127.0.0.1');

// A clean exit on SIGTERM, so that --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));
