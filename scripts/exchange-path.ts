// Which functions of src/ one proxied request and one heartbeat run through, read from V8's precise
// coverage (call counts) around a single exchange on a warmed-up switchboard (embedded store, access log on).
// Usage: node --require tsx/cjs scripts/exchange-path.ts
// A reviewer's measure of how far the code of one exchange is spread; nothing here runs in tests.
import http from 'node:http';
import inspector from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startSwitchboard } from '../src/app';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';

const ROOT = path.join(__dirname, '..');
const TOKEN = 'exchange-path-admin-token-0123456789abcdef';

const WRAPPER = new Set(['', 'get', '__name']);

interface Coverage {
  result: Array<{ url: string; functions: Array<{ functionName: string; ranges: Array<{ count: number }> }> }>;
}

/** Functions of src/ that ran during `work`, grouped by file. */
async function traced(session: inspector.Session, work: () => Promise<void>): Promise<Map<string, string[]>> {
  await session.post('Profiler.takePreciseCoverage');
  await work();
  const cov = (await session.post('Profiler.takePreciseCoverage')) as unknown as Coverage;
  const byFile = new Map<string, string[]>();
  for (const script of cov.result) {
    const file = script.url.startsWith('file://') ? path.relative(ROOT, new URL(script.url).pathname) : '';
    if (!file.startsWith('src/')) continue;
    // tsx's module wrapper adds getters (`get`) and `__name` helpers; a function may be listed twice.
    const ran = script.functions.filter((f) => f.ranges[0].count > 0 && !WRAPPER.has(f.functionName)).map((f) => f.functionName);
    if (ran.length) byFile.set(file, [...new Set(ran)]);
  }
  return byFile;
}

function report(title: string, byFile: Map<string, string[]>): void {
  const calls = [...byFile.values()].reduce((n, fns) => n + fns.length, 0);
  console.log(`\n${title}: ${byFile.size} files, ${calls} distinct named functions`);
  for (const [file, fns] of [...byFile].sort()) console.log(`  ${file}: ${fns.join(', ')}`);
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject);
  });
}

async function heartbeat(control: string, url: string): Promise<number> {
  const res = await fetch(`${control}/v1/tools/hello/backends/web-1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url, ttl: 60 }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function main(): Promise<void> {
  const backend = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const config = loadConfig({ env: {}, overrides: { adminToken: TOKEN, dataDir: null, control: { port: 0 }, proxy: { port: 0, accessLog: true } } });
  const sink = { write: () => true };
  const sb = await startSwitchboard({ config, roles: { proxy: true, registry: true }, logger: createLogger('info', sink), defaultMetrics: false });
  const control = `http://127.0.0.1:${sb.controlPort}`;
  const proxy = `http://127.0.0.1:${sb.proxyPort}/hello/x`;
  for (let i = 0; i < 20; i++) await heartbeat(control, backendUrl);
  for (let i = 0; i < 200 && (await get(proxy)) !== 200; i++) await new Promise((r) => setTimeout(r, 25));
  for (let i = 0; i < 50; i++) await get(proxy);

  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: false });
  report('one proxied request (GET /hello/x, pooled connection)', await traced(session, async () => void (await get(proxy))));
  report('one heartbeat (lease renewal, fast path)', await traced(session, async () => void (await heartbeat(control, backendUrl))));
  session.disconnect();
  await sb.stop();
  backend.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
