// The load of bench/reload-tail.ts, in a process of its own so that the bench's own work (heartbeats,
// scrapes, Redis commands) does not delay the clients: a closed loop of CLIENTS keep-alive clients to
// one URL, bounded by MAX requests and SECONDS, or ended early by SIGTERM. Writes every answer as JSON on
// stdout: when its request was sent (epoch ms), its latency (ms) and whether it failed.
import { closedLoop } from './lib';

async function main(): Promise<void> {
  const [port, path, clients, seconds, max] = process.argv.slice(2);
  const sentAt: number[] = [];
  const ms: number[] = [];
  const failed: number[] = [];
  const answers = () => JSON.stringify({ sentAt, ms, failed });
  // Exits once the whole answer is out: a pipe's reader may be slower than the write.
  process.once('SIGTERM', () => process.stdout.write(answers(), () => process.exit(0)));
  await closedLoop({ concurrency: Number(clients), maxRequests: Number(max), durationMs: Number(seconds) * 1000, port: Number(port) }, () => ({ method: 'GET', path }), (t, d, f) => {
    sentAt.push(t);
    ms.push(Math.round(d * 1000) / 1000);
    if (f) failed.push(sentAt.length - 1);
  });
  process.stdout.write(answers());
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
