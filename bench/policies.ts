// What a long ban list costs a request: the p50/p99 of small requests through a `serve` process holding
// 10,000 address-range bans and 1,000 User-Agent bans (none of which matches the bench's client), against
// the same requests through one without a ban. Rounds alternate between the two processes (which one goes
// first alternates too) and each figure
// is the median of its rounds, since other work on the machine moves from one minute to the next. The
// requests carry one of a few dozen User-Agents, as a fleet's clients do. Loopback only; every load is
// bounded in count and time.
// Usage: npm run build && npm run bench:policies [-- --rounds 3 --seconds 5 --concurrency 16 --cidrs 10000 --patterns 1000]
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { callApi } from '../test/support/api';
import { writeConfig } from '../test/support/process';
import { freePort } from '../test/support/redis-server';
import { startServe as startSharedServe, type Serve } from './switchboard-procs';
import { checkBuild, closedLoop, machine, median, ROOT, startChild, stopChild, switchboardArgs, switchboardEnv, waitHttp, writeSection, type LoadResult } from './lib';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    cidrs: { type: 'string', default: '10000' },
    patterns: { type: 'string', default: '1000' },
  },
});
const ROUNDS = Math.max(1, Number(values.rounds));
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const CIDRS = Number(values.cidrs);
const PATTERNS = Number(values.patterns);
const TOKEN = 'bench-admin-token-0123456789abcdef';
const AGENTS = Array.from({ length: 40 }, (_, i) => `Mozilla/5.0 (X11; Linux x86_64) bench-client/${i}.0`);
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');

function log(msg: string): void {
  process.stderr.write(`[bench:policies] ${msg}\n`);
}

function startServe(): Promise<Serve> {
  return startSharedServe({ proxy: { accessLog: false }, discovery: { enabled: false }, dataDir: null, log: { level: 'warn' } }, TOKEN);
}

/** `n` ranges of 10.0.0.0/8 and 172.16.0.0/12 (never loopback), /16 to /32. */
function ranges(n: number): string[] {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  return Array.from({ length: n }, (_, i) => {
    const a = rand();
    const base = i % 2 === 0 ? `10.${(a >>> 16) & 255}` : `172.${16 + ((a >>> 16) & 15)}`;
    return `${base}.${(a >>> 8) & 255}.${a & 255}/${16 + (rand() % 17)}`;
  });
}

/** Puts `bodies` as bans, `parallel` at a time. */
async function putBans(sb: Serve, prefix: string, bodies: unknown[], parallel = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const r = await callApi(sb.control, TOKEN, 'PUT', `/v1/blocks/${prefix}-${i}`, bodies[i]);
      if (r.status !== 200) throw new Error(`ban ${prefix}-${i}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function policyGauge(sb: Serve): Promise<number> {
  const text = await (await fetch(`${sb.control}/metrics`)).text();
  return Number(/^switchboard_policies\{kind="ban"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

async function measure(sb: Serve): Promise<LoadResult> {
  return closedLoop({ concurrency: CONCURRENCY, maxRequests: 2_000_000, durationMs: SECONDS * 1000, port: sb.proxyPort }, (i) => ({
    method: 'GET',
    path: '/web/',
    headers: { 'user-agent': AGENTS[i % AGENTS.length] },
  }));
}

async function main(): Promise<void> {
  checkBuild();
  const backendPort = await freePort();
  const children: ChildProcess[] = [startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'proxy-backend.ts')], { PORTS: String(backendPort) })];
  const serves: Serve[] = [];
  try {
    await waitHttp(`http://127.0.0.1:${backendPort}/`);
    const [plain, banned] = [await startServe(), await startServe()];
    serves.push(plain, banned);
    for (const sb of serves) {
      const r = await callApi(sb.control, TOKEN, 'PUT', '/v1/tools/web/backends/web-1', { url: `http://127.0.0.1:${backendPort}`, ttl: 3600 });
      if (r.status !== 200) throw new Error(`registering: ${r.status}`);
    }
    const loadStart = Date.now();
    await putBans(banned, 'net', ranges(CIDRS).map((cidr) => ({ cidr })));
    await putBans(banned, 'ua', Array.from({ length: PATTERNS }, (_, i) => ({ userAgent: `^(?:BadBot|Scraper)-${i}/` })), 4);
    const want = CIDRS + PATTERNS;
    for (let i = 0; i < 600 && (await policyGauge(banned)) < want; i++) await new Promise((r) => setTimeout(r, 100));
    log(`${want} bans loaded in ${((Date.now() - loadStart) / 1000).toFixed(1)} s`);
    for (const sb of serves) await measure(sb); // warm-up: JIT, connections, the ban index made
    const results: { plain: LoadResult[]; banned: LoadResult[] } = { plain: [], banned: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Which goes first alternates: a round's second half may find the machine busier than its first.
      if (round % 2 === 0) {
        results.plain.push(await measure(plain));
        results.banned.push(await measure(banned));
      } else {
        results.banned.push(await measure(banned));
        results.plain.push(await measure(plain));
      }
      log(`round ${round + 1}: plain p99 ${f2(results.plain[round].p99ms)} ms, banned p99 ${f2(results.banned[round].p99ms)} ms`);
    }
    const row = (name: string, rs: LoadResult[]) =>
      `| ${name} | ${f2(median(rs.map((r) => r.p50ms)))} | ${f2(median(rs.map((r) => r.p99ms)))} | ${Math.round(median(rs.map((r) => r.perSecond)))} | ${rs.reduce((n, r) => n + r.errors, 0)} |`;
    const p99 = (rs: LoadResult[]) => median(rs.map((r) => r.p99ms));
    const body = [
      `## Policies: a request's cost with ${CIDRS} address bans and ${PATTERNS} User-Agent bans`,
      '',
      `${machine()}; ${ROUNDS} rounds of ${SECONDS} s, ${CONCURRENCY} requests at once, ${AGENTS.length} distinct User-Agents; medians of the rounds.`,
      '',
      '| proxy | p50 ms | p99 ms | requests/s | errors |',
      '|---|---|---|---|---|',
      row('no ban', results.plain),
      row(`${CIDRS + PATTERNS} bans`, results.banned),
      '',
      `p99 with the bans / without: ${f2(p99(results.banned) / p99(results.plain))}`,
    ].join('\n');
    process.stdout.write(`${body}\n`);
    writeSection('policies', body);
  } finally {
    await Promise.all(serves.map((s) => stopChild(s.proc)));
    await Promise.all(children.map((c) => stopChild(c)));
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
