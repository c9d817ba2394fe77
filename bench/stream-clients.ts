// The streaming clients of bench/fairness.ts, in a process of their own so that their reading does not
// delay the bench's own probes: CLIENTS requests to URL, each read as fast as it comes for SECONDS, then
// cut. Prints one JSON line: the bytes each client read and the time they read for.
import http from 'node:http';

const url = new URL(process.env.URL ?? '');
const clients = Number(process.env.CLIENTS);
const seconds = Number(process.env.SECONDS);

function one(bytes: number[], i: number, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, agent: false }, (res) => {
      res.on('data', (d: Buffer) => (bytes[i] += d.length));
      res.on('error', () => resolve());
      res.on('close', () => resolve());
    });
    req.on('error', () => resolve());
    setTimeout(() => req.destroy(), Math.max(0, deadline - Date.now()));
  });
}

async function main(): Promise<void> {
  const bytes = new Array<number>(clients).fill(0);
  const t0 = performance.now();
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(bytes.map((_, i) => one(bytes, i, deadline)));
  process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - t0) / 1000 })}\n`);
}

void main();
