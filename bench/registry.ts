// Heartbeats per second through the HTTP registration API on one registry process (Redis store), against
// a bare express app that only parses the same JSON body (express's own ceiling) in the same run. The
// registry answers heartbeats on its plain node:http fast path (src/registry/heartbeat-fast-path.ts), so
// it can beat that ceiling.
// Usage: npm run build && npm run bench:registry [-- --seconds 10 --concurrency 64 --tools 1000]
import { parseArgs } from 'node:util';
import path from 'node:path';
import { RedisServer, freePort } from '../test/support/redis-server';
import { closedLoop, cpuSeconds, hasWrk, machine, ROOT, startChild, switchboardArgs, switchboardEnv, waitHttp, wrkLoad, writeSection, type LoadResult } from './lib';

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
const TOKEN = 'bench-admin-token-0123456789abcdef';

function heartbeat(i: number) {
  const n = i % tools;
  return {
    method: 'PUT',
    path: `/v1/tools/tool${n}/backends/a`,
    body: JSON.stringify({ url: `http://127.0.0.1:${20000 + n}`, ttl: 30, clientVersion: 'bench' }),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  };
}

const WRK_SCRIPT = `
local n = 0
request = function()
  n = n + 1
  local i = n % ${tools}
  local body = string.format('{"url":"http://127.0.0.1:%d","ttl":30,"clientVersion":"bench"}', 20000 + i)
  return wrk.format("PUT", "/v1/tools/tool" .. i .. "/backends/a",
    { ["Authorization"] = "Bearer ${TOKEN}", ["Content-Type"] = "application/json" }, body)
end
`;

interface Measured extends LoadResult {
  /** Requests per CPU-second of the server process: what one core-bound process can do. */
  perCpuSecond: number;
}

async function measure(port: number, pid: number): Promise<Measured> {
  // Warm-up: JIT, connection pools, and every tool registered once so the run measures renewals.
  await closedLoop({ concurrency, maxRequests: tools, durationMs: 30_000, port }, heartbeat);
  const cpu0 = cpuSeconds(pid);
  const r = useWrk
    ? wrkLoad({ url: `http://127.0.0.1:${port}`, seconds, connections: concurrency, script: WRK_SCRIPT })
    : await closedLoop({ concurrency, maxRequests: 2_000_000, durationMs: seconds * 1000, port }, heartbeat);
  const cpu = cpuSeconds(pid) - cpu0;
  return { ...r, perCpuSecond: r.requests / cpu };
}

const useWrk = hasWrk();

async function main(): Promise<void> {
  const redis = await new RedisServer().start();
  const children = [];
  try {
    const basePort = await freePort();
    const base = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'bare-express.ts')], { PORT: String(basePort) });
    children.push(base);
    await waitHttp(`http://127.0.0.1:${basePort}/healthz`);
    const baseline = await measure(basePort, base.pid!);
    base.kill('SIGKILL');

    const controlPort = await freePort();
    const registry = startChild(switchboardArgs('registry'), switchboardEnv({
      REDIS_URL: redis.url,
      SWITCHBOARD_CONTROL_PORT: String(controlPort),
      SWITCHBOARD_ADMIN_TOKEN: TOKEN,
      SWITCHBOARD_LOG_LEVEL: 'warn',
    }));
    children.push(registry);
    await waitHttp(`http://127.0.0.1:${controlPort}/healthz`);
    const sb = await measure(controlPort, registry.pid!);
    registry.kill('SIGTERM');

    const row = (name: string, r: Measured) =>
      `| ${name} | ${Math.round(r.perSecond)} | ${Math.round(r.perCpuSecond)} | ${(r.perSecond / baseline.perSecond).toFixed(2)} | ${(r.perCpuSecond / baseline.perCpuSecond).toFixed(2)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.errors} |`;
    const body = [
      '## Registry: heartbeats per second (one process, Redis store)',
      '',
      `Command: \`npm run build && npm run bench:registry -- --seconds ${seconds} --concurrency ${concurrency} --tools ${tools}\``,
      `Run: ${new Date().toISOString()}, ${machine()}. Load generator, registry and redis-server share the machine.`,
      `Each request is a heartbeat (PUT /v1/tools/{tool}/backends/{id}, renewal of one of ${tools} leases), keep-alive, ${concurrency} connections, load from ${useWrk ? 'wrk (1 thread)' : 'a Node client (install wrk for a cheaper load generator)'}.`,
      'Per CPU-second: requests divided by the CPU time the server process used, i.e. what one process given a whole core does.',
      '',
      '| server | requests/s | per CPU-second | ratio to bare express (req/s) | ratio to bare express (per CPU-second) | p50 ms | p99 ms | errors |',
      '|---|---|---|---|---|---|---|---|',
      row('bare express (JSON body parse + 200)', baseline),
      row('switchboard registry (heartbeat fast path: auth, validation, Lua upsert on Redis)', sb),
      '',
      `Target: >= 5,000 heartbeats/s on one core-bound process (100,000 backends at 30 s on two processes). Measured: ${Math.round(sb.perSecond)}/s sharing the machine, ${Math.round(sb.perCpuSecond)} per CPU-second of the registry process.`,
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
