// HTTPS throughput, side by side in one run, against one backend process: a `serve` process (embedded
// store, access log on) on its plain port and its TLS port, and nginx (one worker) terminating TLS with the
// same certificate. HTTP/1.1 keep-alive over TLS and on the plain port (wrk), HTTP/2 (h2load, when installed:
// Debian package nghttp2-client), and new connections per second, each a full TLS handshake (wrk with
// `Connection: close`: wrk resumes no session). The issue's targets: HTTP/1.1 over TLS at least 0.8x the plain
// port's requests/s of the same run; handshakes per second at least 0.5x nginx's. Loopback only; every load is
// bounded in time. Both proxies speak TLS 1.3 (the report says what each negotiated), and node:https answering
// by itself (bench/bare-https.ts) shows what the runtime's own TLS costs a connection, and the bare undici
// proxy over TLS (bench/bare-undici.ts) what forwarding adds to it; `serve --workers N` (on a
// Redis of its own) takes new connections beside the single process. Every row is measured
// once a round, the rounds alternated; a figure is the median of its rounds.
// Usage: npm run build && npm run bench:tls [-- --seconds 10 --warmup 2 --rounds 3 --workers 2 --connections 64 --h2-clients 16 --h2-streams 10 --handshake-connections 16 --print-only]
import { spawnSync } from 'node:child_process';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { callApi } from '../test/support/api';
import { makePair, writePair } from '../test/support/certificates';
import { writeConfig } from '../test/support/process';
import { RedisServer, freePort } from '../test/support/redis-server';
import { checkBuild, cpuSeconds, hasWrk, machine, median, percentile, ROOT, startChild, stopChild, switchboardArgs, switchboardEnv, treeCpuSeconds, waitHttp, wrkLoad, writeSection, type LoadResult } from './lib';
import { nginxInstalled, startNginx, NGINX_BIN } from './nginx';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    'h2-clients': { type: 'string', default: '16' },
    'h2-streams': { type: 'string', default: '10' },
    'handshake-connections': { type: 'string', default: '16' },
    'print-only': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const ROUNDS = Number(values.rounds);
/** A `serve --workers N` row of new connections besides the single process (0: none). */
const WORKERS = Number(values.workers);
const CONNECTIONS = Number(values.connections);
const H2_CLIENTS = Number(values['h2-clients']);
const H2_STREAMS = Number(values['h2-streams']);
const HANDSHAKE_CONNECTIONS = Number(values['handshake-connections']);
const TOKEN = 'bench-admin-token-0123456789abcdef';
const TOOL = 'tool-0';
const NAME = 'bench.example.test';

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const verdict = (ok: boolean) => (ok ? '**PASS**' : '**MISS**');

function log(msg: string): void {
  process.stderr.write(`[bench:tls] ${msg}\n`);
}

interface Row {
  name: string;
  load: LoadResult;
  /** CPU of the proxy process(es) per request, in microseconds. */
  cpuUs: number;
}

type Load = (seconds: number) => LoadResult;

/** Warm-up, then the measured run; CPU counted over the measured run only. */
function measure(name: string, load: Load, cpuOf: () => number): Row {
  if (WARMUP > 0) load(WARMUP);
  const cpu0 = cpuOf();
  const result = load(SECONDS);
  const cpuUs = ((cpuOf() - cpu0) / Math.max(1, result.requests)) * 1e6;
  log(`${name}: ${f0(result.perSecond)} req/s, p50 ${result.p50ms} ms, p99 ${result.p99ms} ms, ${f0(cpuUs)} us CPU/req, ${result.errors} errors`);
  return { name, load: result, cpuUs };
}

/** A row to measure once a round. */
interface Plan {
  key: string;
  name: string;
  load: Load;
  cpuOf: () => number;
}

/** Every row once a round, in the same order, ROUNDS times; each figure the median of its rounds. */
function measureRounds(plans: Plan[]): Record<string, Row> {
  const runs = new Map<string, Row[]>(plans.map((p) => [p.key, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round} of ${ROUNDS}`);
    for (const p of plans) runs.get(p.key)!.push(measure(p.name, p.load, p.cpuOf));
  }
  const rows: Record<string, Row> = {};
  for (const p of plans) {
    const rs = runs.get(p.key)!;
    const of = (f: (r: Row) => number) => median(rs.map(f));
    rows[p.key] = {
      name: p.name,
      cpuUs: of((r) => r.cpuUs),
      load: { ...rs[0].load, perSecond: of((r) => r.load.perSecond), p50ms: of((r) => r.load.p50ms), p99ms: of((r) => r.load.p99ms), errors: rs.reduce((n, r) => n + r.load.errors, 0) },
    };
  }
  return rows;
}

/** Once a TLS server accepts handshakes (within 20 s). */
async function waitListening(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await negotiated(port)).startsWith('failed')) {
    if (Date.now() > deadline) throw new Error(`nothing shook hands on port ${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The TLS version a server negotiates with a client offering everything Node offers (ALPN http/1.1). */
function negotiated(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      resolve(s.getProtocol() ?? 'unknown');
      s.destroy();
    });
    s.once('error', (err) => resolve(`failed (${err.message})`));
  });
}

const keepAlive = (url: string): Load => (seconds) => wrkLoad({ url, seconds, connections: CONNECTIONS });

/** A new connection, and so a full handshake, per request: wrk asks the server to close after each answer. */
const handshakes = (url: string): Load => (seconds) =>
  wrkLoad({ url, seconds, connections: HANDSHAKE_CONNECTIONS, script: 'wrk.headers["Connection"] = "close"\n' });

function hasH2load(): boolean {
  return spawnSync('h2load', ['--version']).error === undefined;
}

/** HTTP/2 load from h2load: `H2_CLIENTS` sessions of `H2_STREAMS` concurrent streams each; latencies from its per-request log. */
const h2 = (url: string): Load => (seconds) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-h2load-'));
  const logFile = path.join(dir, 'requests.tsv');
  try {
    const r = spawnSync('h2load', ['-c', String(H2_CLIENTS), '-m', String(H2_STREAMS), '-D', String(seconds), '--log-file', logFile, url], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
    if (r.status !== 0) throw new Error(`h2load failed: ${r.stderr || r.stdout}`);
    const latencies = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split('\t')[2]) / 1000)
      .sort((a, b) => a - b);
    const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
    const non2xx = /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
    const errors = (done ? Number(done[3]) + Number(done[4]) : 0) + (non2xx ? Number(non2xx[2]) + Number(non2xx[3]) : 0);
    const perSecond = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
    return { requests: latencies.length, errors, seconds, perSecond, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

interface Serve {
  pid: number;
  control: string;
  plainPort: number;
  tlsPort: number;
  stop(): Promise<void>;
}

/**
 * `switchboard serve` with HTTPS on (HTTP/2 on by default), the plain port serving too (no redirect); with
 * `workers` > 0, `serve --workers N` on the Redis at `redisUrl` (workers need a shared store).
 */
async function startServe(files: { cert: string; key: string }, workers = 0, redisUrl?: string): Promise<Serve> {
  const [controlPort, plainPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    proxy: { accessLog: true, tls: { port: tlsPort, cert: files.cert, key: files.key, redirectHttp: false } },
    discovery: { enabled: false },
    dataDir: null,
    log: { level: 'info' },
  };
  const workerArgs = workers > 0 ? ['--workers', String(workers)] : [];
  const proc = startChild(switchboardArgs('serve', '--config', writeConfig(config), ...workerArgs), switchboardEnv({
    SWITCHBOARD_CONTROL_PORT: String(controlPort),
    SWITCHBOARD_PROXY_PORT: String(plainPort),
    SWITCHBOARD_ADMIN_TOKEN: TOKEN,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  }));
  const control = `http://127.0.0.1:${controlPort}`;
  await waitHttp(`${control}/healthz`);
  return { pid: proc.pid!, control, plainPort, tlsPort, stop: () => stopChild(proc) };
}

async function register(sb: Serve, backendPort: number): Promise<void> {
  const r = await callApi(sb.control, TOKEN, 'PUT', `/v1/tools/${TOOL}/backends/${TOOL}-1`, { url: `http://127.0.0.1:${backendPort}`, ttl: 3600 });
  if (r.status >= 300) throw new Error(`registering ${TOOL}: ${r.status} ${JSON.stringify(r.body)}`);
  const deadline = Date.now() + 10_000;
  while ((await fetch(`http://127.0.0.1:${sb.plainPort}/${TOOL}/`).then((x) => x.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`${TOOL} was never routed`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function main(): Promise<void> {
  checkBuild();
  if (!hasWrk()) throw new Error('bench:tls needs wrk (Debian package wrk) as its load generator');
  const started = new Date();
  const certDir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-tls-'));
  const files = writePair(certDir, 'bench', await makePair([NAME]));
  const backendPort = await freePort();
  const backend = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'proxy-backend.ts')], { PORTS: String(backendPort) });
  await waitHttp(`http://127.0.0.1:${backendPort}/`);
  const sb = await startServe(files);
  const [barePort, undiciPort] = [await freePort(), await freePort()];
  const tlsEnv = { CERT: files.cert, KEY: files.key };
  const bare = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'bare-https.ts')], { PORT: String(barePort), ...tlsEnv });
  const undici = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'bare-undici.ts')], { PORT: String(undiciPort), TARGET: `http://127.0.0.1:${backendPort}`, ...tlsEnv });
  const stops: Array<() => Promise<void>> = [() => sb.stop(), () => stopChild(bare), () => stopChild(undici), () => stopChild(backend, 'SIGKILL')];
  try {
    await register(sb, backendPort);
    const sbCpu = () => cpuSeconds(sb.pid);
    const tlsUrl = `https://127.0.0.1:${sb.tlsPort}/${TOOL}/`;
    const plans: Plan[] = [
      { key: 'plain', name: 'switchboard, plain port, HTTP/1.1 keep-alive', load: keepAlive(`http://127.0.0.1:${sb.plainPort}/${TOOL}/`), cpuOf: sbCpu },
      { key: 'tls', name: 'switchboard, TLS, HTTP/1.1 keep-alive', load: keepAlive(tlsUrl), cpuOf: sbCpu },
    ];
    if (hasH2load()) plans.push({ key: 'h2', name: 'switchboard, TLS, HTTP/2', load: h2(tlsUrl), cpuOf: sbCpu });
    plans.push({ key: 'handshakes', name: 'switchboard, TLS, a new connection per request', load: handshakes(tlsUrl), cpuOf: sbCpu });
    const protocols: Record<string, string> = { switchboard: await negotiated(sb.tlsPort) };
    if (WORKERS > 0) {
      const redis = await new RedisServer().start();
      stops.push(() => redis.stop());
      const many = await startServe(files, WORKERS, redis.url);
      stops.unshift(() => many.stop());
      await register(many, backendPort);
      plans.push({
        key: 'workersHandshakes',
        name: `switchboard --workers ${WORKERS} (on Redis), TLS, a new connection per request`,
        load: handshakes(`https://127.0.0.1:${many.tlsPort}/${TOOL}/`),
        cpuOf: () => treeCpuSeconds(many.pid),
      });
    }
    if (nginxInstalled()) {
      const [port, tlsPort] = [await freePort(), await freePort()];
      const ngx = await startNginx(port, backendPort, { port: tlsPort, ...files });
      stops.unshift(() => ngx.stop());
      const ngxCpu = () => treeCpuSeconds(ngx.pid);
      const ngxUrl = `https://127.0.0.1:${tlsPort}/${TOOL}/`;
      protocols.nginx = await negotiated(tlsPort);
      plans.push(
        { key: 'nginxPlain', name: 'nginx (1 worker), plain port, HTTP/1.1 keep-alive', load: keepAlive(`http://127.0.0.1:${port}/${TOOL}/`), cpuOf: ngxCpu },
        { key: 'nginxTls', name: 'nginx (1 worker), TLS, HTTP/1.1 keep-alive', load: keepAlive(ngxUrl), cpuOf: ngxCpu },
      );
      if (hasH2load()) plans.push({ key: 'nginxH2', name: 'nginx (1 worker), TLS, HTTP/2', load: h2(ngxUrl), cpuOf: ngxCpu });
      plans.push({ key: 'nginxHandshakes', name: 'nginx (1 worker), TLS, a new connection per request', load: handshakes(ngxUrl), cpuOf: ngxCpu });
    } else {
      log(`${NGINX_BIN} not found: nginx skipped`);
    }
    await waitListening(barePort);
    await waitListening(undiciPort);
    protocols['node:https'] = await negotiated(barePort);
    const undiciUrl = `https://127.0.0.1:${undiciPort}/${TOOL}/`;
    const undiciCpu = () => cpuSeconds(undici.pid!);
    plans.push(
      { key: 'undiciTls', name: 'bare undici proxy over TLS, HTTP/1.1 keep-alive', load: keepAlive(undiciUrl), cpuOf: undiciCpu },
      { key: 'undiciHandshakes', name: 'bare undici proxy over TLS, a new connection per request', load: handshakes(undiciUrl), cpuOf: undiciCpu },
    );
    plans.push({ key: 'bareHandshakes', name: 'node:https answering itself (no forwarding), a new connection per request', load: handshakes(`https://127.0.0.1:${barePort}/`), cpuOf: () => cpuSeconds(bare.pid!) });
    log(`negotiated: ${JSON.stringify(protocols)}`);
    const rows = measureRounds(plans);
    const body = report(started, rows, protocols);
    if (!values['print-only']) writeSection('tls', body);
    process.stdout.write(`${body}\n`);
  } finally {
    for (const stop of stops) await stop();
    rmSync(certDir, { recursive: true, force: true });
  }
}

function report(started: Date, rows: Record<string, Row>, protocols: Record<string, string>): string {
  const out = [
    '## HTTPS (`npm run bench:tls`)',
    '',
    `Run: ${started.toISOString()}, ${machine()}. The load generators (wrk; h2load for HTTP/2), the backend, switchboard \`serve\` (access log on), nginx, the bare undici proxy and node:https share the machine, with other work running on it.`,
    `Load: ${ROUNDS} rounds, every row once a round in the order below; each row ${SECONDS} s after a ${WARMUP} s warm-up; a figure is the median of its rounds. \`GET /${TOOL}/\`, the backend a node:http server in its own process answering 100 bytes; one certificate (ECDSA P-256) for every server. TLS negotiated with a client offering TLS 1.2 and 1.3: ${Object.entries(protocols).map(([k, v]) => `${k} ${v}`).join(', ')}. HTTP/1.1: wrk, 1 thread, ${CONNECTIONS} keep-alive connections. HTTP/2: h2load, ${H2_CLIENTS} connections of ${H2_STREAMS} concurrent streams. New connections: wrk, ${HANDSHAKE_CONNECTIONS} connections, \`Connection: close\` on every request (a full TLS handshake each: wrk resumes no session). CPU: the server process's user+system time per request (nginx: master + worker).`,
    '',
    '| | req/s | p50 ms | p99 ms | CPU µs/req | errors |',
    '|---|---|---|---|---|---|',
    ...Object.values(rows).map((r) => `| ${r.name} | ${f0(r.load.perSecond)} | ${f2(r.load.p50ms)} | ${f2(r.load.p99ms)} | ${f0(r.cpuUs)} | ${r.load.errors} |`),
    '',
  ];
  if (!rows.h2) out.push('HTTP/2: h2load not installed (Debian package nghttp2-client), not run.', '');
  const ratio = (a: Row | undefined, b: Row | undefined) => (a && b ? a.load.perSecond / b.load.perSecond : NaN);
  const overTls = ratio(rows.tls, rows.plain);
  out.push(`HTTP/1.1 over TLS / the plain port, requests/s: ${f2(overTls)}x (target ≥ 0.8x): ${verdict(overTls >= 0.8)}.`);
  if (rows.nginxHandshakes) {
    const hs = ratio(rows.handshakes, rows.nginxHandshakes);
    out.push(`New connections per second / nginx with one worker: ${f2(hs)}x (target ≥ 0.5x): ${verdict(hs >= 0.5)}.`);
    if (rows.workersHandshakes) out.push(`The same with switchboard \`--workers ${WORKERS}\` (nginx still one worker): ${f2(ratio(rows.workersHandshakes, rows.nginxHandshakes))}x.`);
    out.push(`For scale, in the same rounds: nginx's own TLS / plain requests/s ${f2(ratio(rows.nginxTls, rows.nginxPlain))}x (the load generator's TLS shares the 2 cores); node:https answering by itself, new connections / nginx's ${f2(ratio(rows.bareHandshakes, rows.nginxHandshakes))}x, switchboard / node:https ${f2(ratio(rows.handshakes, rows.bareHandshakes))}x.`);
    out.push(`Against the bare undici proxy over TLS (node:https and undici's pool.stream, no routing, rules or log): keep-alive requests/s ${f2(ratio(rows.tls, rows.undiciTls))}x, new connections ${f2(ratio(rows.handshakes, rows.undiciHandshakes))}x; the bare proxy's new connections / nginx's ${f2(ratio(rows.undiciHandshakes, rows.nginxHandshakes))}x.`);
    out.push(`HTTP/1.1 over TLS / nginx: ${f2(ratio(rows.tls, rows.nginxTls))}x req/s, p99 ${f2(rows.tls.load.p99ms / rows.nginxTls.load.p99ms)}x.`);
    if (rows.h2 && rows.nginxH2) out.push(`HTTP/2 / nginx: ${f2(ratio(rows.h2, rows.nginxH2))}x req/s, p99 ${f2(rows.h2.load.p99ms / rows.nginxH2.load.p99ms)}x.`);
  } else {
    out.push('nginx: not installed, not run.');
  }
  return out.join('\n');
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
