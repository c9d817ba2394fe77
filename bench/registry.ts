// Heartbeats per second through the HTTP registration API on one registry process (Redis store), against
// a bare express app that only parses the same JSON body (the framework's own ceiling) in the same run.
// Usage: npm run build && npm run bench:registry [-- --seconds 10 --concurrency 64 --tools 1000]
import { parseArgs } from 'node:util';
import path from 'node:path';
import { RedisServer, freePort } from '../test/support/redis-server';
import { closedLoop, machine, ROOT, startChild, waitHttp, writeSection, type LoadResult } from './lib';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    tools: { type: 'string', default: '1000' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const tools = Number(values.tools);
const TOKEN = 'bench-admin-token-0123456789';

function heartbeat(i: number) {
  const n = i % tools;
  return {
    method: 'PUT',
    path: `/v1/tools/tool${n}/backends/a`,
    body: JSON.stringify({ url: `http://127.0.0.1:${20000 + n}`, ttl: 30, clientVersion: 'bench' }),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  };
}

async function measure(port: number): Promise<LoadResult> {
  // Warm-up: JIT, connection pools, and every tool registered once so the run measures renewals.
  await closedLoop({ concurrency, maxRequests: tools, durationMs: 30_000, port }, heartbeat);
  return closedLoop({ concurrency, maxRequests: 2_000_000, durationMs: seconds * 1000, port }, heartbeat);
}

async function main(): Promise<void> {
  const redis = await new RedisServer().start();
  const children = [];
  try {
    const basePort = await freePort();
    const base = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'bare-express.ts')], { PORT: String(basePort) });
    children.push(base);
    await waitHttp(`http://127.0.0.1:${basePort}/healthz`);
    const baseline = await measure(basePort);
    base.kill('SIGKILL');

    const controlPort = await freePort();
    const registry = startChild([path.join(ROOT, 'dist', 'src', 'cli.js'), 'registry'], {
      REDIS_URL: redis.url,
      SWITCHBOARD_CONTROL_PORT: String(controlPort),
      SWITCHBOARD_ADMIN_TOKEN: TOKEN,
      SWITCHBOARD_LOG_LEVEL: 'warn',
    });
    children.push(registry);
    await waitHttp(`http://127.0.0.1:${controlPort}/healthz`);
    const sb = await measure(controlPort);
    registry.kill('SIGTERM');

    const row = (name: string, r: LoadResult) =>
      `| ${name} | ${Math.round(r.perSecond)} | ${(r.perSecond / baseline.perSecond).toFixed(2)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.errors} |`;
    const body = [
      '## Registry: heartbeats per second (one process, Redis store)',
      '',
      `Command: \`npm run build && npm run bench:registry -- --seconds ${seconds} --concurrency ${concurrency} --tools ${tools}\``,
      `Run: ${new Date().toISOString()}, ${machine()}. Load generator, registry and redis-server share the machine.`,
      `Each request is a heartbeat (PUT /v1/tools/{tool}/backends/{id}, renewal of one of ${tools} leases), keep-alive, ${concurrency} concurrent.`,
      '',
      '| server | requests/s | ratio to bare express | p50 ms | p99 ms | errors |',
      '|---|---|---|---|---|---|',
      row('bare express (JSON body parse + 200)', baseline),
      row('switchboard registry (auth, validation, Lua upsert on Redis)', sb),
      '',
      `Target: >= 5,000 heartbeats/s on one process (100,000 backends at 30 s on two processes). Measured: ${Math.round(sb.perSecond)}/s.`,
    ].join('\n');
    writeSection('registry', body);
    process.stdout.write(`${body}\n`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await redis.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
