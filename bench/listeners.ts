// Many tools in one process for bench/selfheal.ts: an HTTP server (answers 200 "ok") on each of the ports
// LISTEN_PORTS lists ("a-b" ranges and single ports, comma-separated) on LISTEN_HOST. Prints one JSON line
// {"listening":n,"failed":[ports]} once every listen settled, then serves until killed.
import http from 'node:http';

function parsePorts(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let p = a; p <= (b ?? a); p++) out.push(p);
  }
  return out;
}

const host = process.env.LISTEN_HOST ?? '127.0.0.1';
const ports = parsePorts(process.env.LISTEN_PORTS ?? '');
const failed: number[] = [];
let listening = 0;

const handler: http.RequestListener = (_req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('ok');
};

void Promise.all(
  ports.map(
    (port) =>
      new Promise<void>((resolve) => {
        const server = http.createServer(handler);
        server.once('error', () => {
          failed.push(port);
          resolve();
        });
        server.listen({ port, host, backlog: 64 }, () => {
          listening++;
          resolve();
        });
      }),
  ),
).then(() => process.stdout.write(`${JSON.stringify({ listening, failed })}\n`));
