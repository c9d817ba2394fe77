// Proxy throughput side by side, in one run, against one backend process and one load generator (wrk):
// direct to the backend, bare http-proxy (the floor of this library), bare undici, nginx when installed,
// and the switchboard proxy (real CLI process on a real Redis) with 1, 10,000 and 100,000 routes. Then
// memory per table size, the full snapshot reload of 100,000 routes, and registration-to-routable
// through the API with one registry and two proxy processes.
// Usage: npm run build && npm run bench:proxy [-- --seconds 10 --connections 64 --registrations 200 --rest-seconds 45 --profile --print-only]
// Switchboard runs from dist/ (what `switchboard` runs in production): tsx's transform adds per-closure
// work on the hot path that compiled code does not have.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RedisStore } from '../src/registry/redis-store';
import { RedisServer, freePort } from '../test/support/redis-server';
import { checkBuild, cpuSeconds, hasWrk, machine, median, memoryMiB, ROOT, startChild, stopChild, switchboardArgs, switchboardEnv, treeCpuSeconds, waitHttp, wrkLoad, wrkLoadAsync, writeSection, type LoadResult } from './lib';
import { nginxInstalled, startNginx, NGINX_BIN } from './nginx';
import { measurePropagation, summary } from './proxy-registration';
import { breakdownTable } from './profile-breakdown';
import { HIT_TOOL, timeReloadAsSwitchboard, writeRoutes, type ReloadTiming } from './proxy-table';
import { PROFILE_DIR, TOKEN, profileFlags, startRegistry, startSwitchboardProxy, type Started } from './switchboard-procs';
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    registrations: { type: 'string', default: '200' },
    profile: { type: 'boolean', default: false },
    'rest-seconds': { type: 'string', default: '45' },
    'sustain-seconds': { type: 'string', default: '60' },
    'print-only': { type: 'boolean', default: false },
    pairs: { type: 'string', default: '3' },
  },
});
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const registrations = Number(values.registrations);
/** Idle time after the load run of the largest table before its RSS "at rest" is read (V8's memory reducer). */
const restSeconds = Number(values['rest-seconds']);
/** More load on the largest table after its row, for the RSS under sustained load (old-generation growth). */
const sustainSeconds = Number(values['sustain-seconds']);
/**
 * Bare http-proxy and switchboard runs alternated this many times per table size: one pair's p99 ratio
 * moved 0.85-1.43x between rows of one quiet run (the bare run's tail alone 4.5-7.5 ms), so a row reports
 * the median of its runs against the median of its bare runs.
 */
const pairs = Math.max(1, Number(values.pairs));
const SIZES = [1, 10_000, 100_000];

/** A --config file for the processes of the registration part. */
function configFile(config: Record<string, unknown>): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sb-bench-')), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

interface Row {
  name: string;
  load: LoadResult;
  /** CPU time of the proxy process(es) per request, in microseconds; null for the direct run. */
  cpuUs: number | null;
  /** The bare http-proxy run made just before this one, which its ratios are to (the machine's load drifts). */
  ref?: LoadResult;
  refCpuUs?: number | null;
  /** Each alternated pair behind a median row: the switchboard run and the bare run just before it. */
  pairs?: Array<{ sb: LoadResult; bare: LoadResult }>;
  /** The bare undici runs alternated with it (the engine switchboard is built on): medians, and each round's CPU ratio. */
  undici?: { load: LoadResult; cpuUs: number | null; cpuRatios: number[]; p99Ratios: number[] };
}

/** Field by field, the median of several runs; requests and errors are summed. */
function medianLoad(ls: LoadResult[]): LoadResult {
  return {
    requests: ls.reduce((n, l) => n + l.requests, 0),
    errors: ls.reduce((n, l) => n + l.errors, 0),
    seconds: ls.reduce((n, l) => n + l.seconds, 0),
    perSecond: median(ls.map((l) => l.perSecond)),
    p50ms: median(ls.map((l) => l.p50ms)),
    p99ms: median(ls.map((l) => l.p99ms)),
  };
}

/**
 * `pairs` rounds of a bare http-proxy run, a bare undici run and `run`, alternated; the row is their
 * medians, its ratios to the bare runs of the same rounds.
 */
async function pairedRows(name: string, bareRun: () => Row, undiciRun: () => Row, run: () => Promise<Row>): Promise<Row> {
  const sb: Row[] = [];
  const bare: Row[] = [];
  const und: Row[] = [];
  for (let i = 0; i < pairs; i++) {
    bare.push(bareRun());
    und.push(undiciRun());
    sb.push(await run());
  }
  const cpu = (rows: Row[]) => (rows.every((x) => x.cpuUs !== null) ? median(rows.map((x) => x.cpuUs!)) : null);
  return {
    name,
    load: medianLoad(sb.map((x) => x.load)),
    cpuUs: cpu(sb),
    ref: medianLoad(bare.map((x) => x.load)),
    refCpuUs: cpu(bare),
    pairs: sb.map((x, i) => ({ sb: x.load, bare: bare[i].load })),
    undici: {
      load: medianLoad(und.map((x) => x.load)),
      cpuUs: cpu(und),
      cpuRatios: sb.map((x, i) => (x.cpuUs ?? NaN) / (und[i].cpuUs ?? NaN)),
      p99Ratios: sb.map((x, i) => x.load.p99ms / und[i].load.p99ms),
    },
  };
}

/**
 * A switchboard run as operators have it: the measured load while Prometheus scrapes /metrics on the
 * control port every second (a scrape folds the request counts and builds the whole exposition text).
 */
async function measureScraped(name: string, port: number, control: number, cpuOf: () => number): Promise<Row> {
  const url = `http://127.0.0.1:${port}/${HIT_TOOL}/`;
  if (warmup > 0) wrkLoad({ url, seconds: warmup, connections });
  let scrapes = 0;
  const scraper = setInterval(() => {
    fetch(`http://127.0.0.1:${control}/metrics`).then((r) => r.text().then(() => scrapes++), () => undefined);
  }, 1000);
  const cpu0 = cpuOf();
  const load = await wrkLoadAsync({ url, seconds, connections });
  const cpuUs = ((cpuOf() - cpu0) / Math.max(1, load.requests)) * 1e6;
  clearInterval(scraper);
  log(`${name}: ${Math.round(load.perSecond)} req/s, p50 ${load.p50ms} ms, p99 ${load.p99ms} ms, ${cpuUs.toFixed(0)} us CPU/req, ${load.errors} errors, ${scrapes} scrapes`);
  return { name, load, cpuUs };
}

function log(msg: string): void {
  process.stderr.write(`[bench:proxy] ${msg}\n`);
}

/** Warm-up (JIT, pools), then the measured run; CPU counted over the measured run only. */
function measure(name: string, port: number, cpuOf: (() => number) | null): Row {
  const url = `http://127.0.0.1:${port}/${HIT_TOOL}/`;
  if (warmup > 0) wrkLoad({ url, seconds: warmup, connections });
  const cpu0 = cpuOf?.() ?? 0;
  const load = wrkLoad({ url, seconds, connections });
  const cpuUs = cpuOf ? ((cpuOf() - cpu0) / Math.max(1, load.requests)) * 1e6 : null;
  log(`${name}: ${Math.round(load.perSecond)} req/s, p50 ${load.p50ms} ms, p99 ${load.p99ms} ms, ${cpuUs?.toFixed(0) ?? '-'} us CPU/req, ${load.errors} errors`);
  return { name, load, cpuUs };
}

async function startNode(script: string, env: Record<string, string>, profileName?: string): Promise<Started> {
  const port = await freePort();
  const profile = profileName ? profileFlags(profileName) : [];
  const child = startChild([...profile, '--require', 'tsx/cjs', path.join(ROOT, 'bench', script)], { PORT: String(port), ...env });
  await waitHttp(`http://127.0.0.1:${port}/${HIT_TOOL}/`);
  // SIGTERM when profiled: the bare proxies exit cleanly on it, which is when --cpu-prof writes its file.
  return { pid: child.pid!, port, stop: () => stopChild(child, profileName ? 'SIGTERM' : 'SIGKILL') };
}


interface Memory {
  routes: number;
  readyMs: number;
  /** After the table loaded and the process settled for a second. */
  rss: number;
  /** VmHWM: the highest RSS of the process so far (read after the load run, and after the sustained load when there is one). */
  peak: number;
  /** After the load run. */
  rssAfterLoad: number;
  /** restSeconds of idle after the load run (largest table only): once V8 has given back what it no longer needs. */
  rssAtRest?: number;
  /** After sustainSeconds more of the same load (largest table only), and the highest RSS sampled during it. */
  sustained?: { rss: number; maxRss: number; perSecond: number };
}

const routesLabel = (n: number) => `${Math.round(n).toLocaleString('en-US')} route${n === 1 ? '' : 's'}`;
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const verdict = (ok: boolean) => (ok ? '**PASS**' : '**MISS**');

async function main(): Promise<void> {
  if (!hasWrk()) throw new Error('bench:proxy needs wrk (Debian package wrk) as its load generator');
  checkBuild();
  if (values.profile) mkdirSync(PROFILE_DIR, { recursive: true });
  const started = new Date();
  const redis = await new RedisServer().start();
  const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'sb:', commandTimeoutMs: 10_000 });
  const cleanup: Array<() => Promise<void>> = [];
  try {
    const backendPort = await freePort();
    const regPort = await freePort();
    const backend = startChild(['--require', 'tsx/cjs', path.join(ROOT, 'bench', 'proxy-backend.ts')], { PORTS: `${backendPort},${regPort}` });
    cleanup.push(() => stopChild(backend, 'SIGKILL'));
    await waitHttp(`http://127.0.0.1:${backendPort}/`);
    const target = `http://127.0.0.1:${backendPort}`;
    await writeRoutes(store, 0, 1, backendPort);

    const rows: Row[] = [];
    rows.push(measure('direct to the backend', backendPort, null));
    // Kept running: each switchboard row is paired with a bare http-proxy run right before it.
    const bare = await startNode('bare-http-proxy.ts', { TARGET: target });
    cleanup.push(() => bare.stop());
    const bareRun = () => measure('bare http-proxy (keep-alive agent)', bare.port, () => cpuSeconds(bare.pid));
    rows.push(bareRun());
    const undici = await startNode('bare-undici.ts', { TARGET: target }, values.profile ? 'bare-undici' : undefined);
    cleanup.push(() => undici.stop());
    // Kept running too: the engine switchboard is built on, the reference of its CPU and tail.
    const undiciRun = () => measure('bare undici (Pool + stream)', undici.port, () => cpuSeconds(undici.pid));
    rows.push(undiciRun());
    let nginxRow: Row | null = null;
    if (nginxInstalled()) {
      const port = await freePort();
      const ngx = await startNginx(port, backendPort);
      cleanup.push(() => ngx.stop());
      await waitHttp(`http://127.0.0.1:${port}/${HIT_TOOL}/`);
      nginxRow = measure('nginx (1 worker, upstream keepalive, access log)', port, () => treeCpuSeconds(ngx.pid));
      rows.push(nginxRow);
      await ngx.stop();
    } else {
      log(`${NGINX_BIN} not found: nginx skipped`);
    }

    const memory: Memory[] = [];
    const sbRows = new Map<number, Row>();
    let sbNoLog: Row | null = null;
    let workersRow: Row | null = null;
    let workersPrimaryCpu: number | null = null;
    let written = 1;
    for (const size of SIZES) {
      if (size > written) {
        const t = Date.now();
        await writeRoutes(store, written, size, backendPort);
        log(`wrote routes ${written}..${size - 1} through the store in ${Date.now() - t} ms`);
        written = size;
      }
      const sb = await startSwitchboardProxy(redis.url, size, true, { profileName: values.profile ? `switchboard-${size}` : undefined });
      cleanup.push(() => sb.stop());
      await new Promise((r) => setTimeout(r, 2000));
      const settled = memoryMiB(sb.pid);
      const name = `switchboard, ${f0(size)} route${size === 1 ? '' : 's'}`;
      const row = await pairedRows(name, bareRun, undiciRun, () => measureScraped(name, sb.port, sb.control, () => cpuSeconds(sb.pid)));
      rows.push(row);
      sbRows.set(size, row);
      const after = memoryMiB(sb.pid);
      let rssAtRest: number | undefined;
      let sustained: Memory['sustained'];
      if (size === SIZES[SIZES.length - 1] && sustainSeconds > 0) {
        log(`${f0(size)} routes: ${sustainSeconds} s more load for the RSS under sustained load`);
        let maxRss = 0;
        const sampler = setInterval(() => (maxRss = Math.max(maxRss, memoryMiB(sb.pid).rss)), 250);
        const load = await wrkLoadAsync({ url: `http://127.0.0.1:${sb.port}/${HIT_TOOL}/`, seconds: sustainSeconds, connections });
        clearInterval(sampler);
        const rss = memoryMiB(sb.pid).rss;
        sustained = { rss, maxRss: Math.max(maxRss, rss), perSecond: load.perSecond };
      }
      if (size === SIZES[SIZES.length - 1] && restSeconds > 0) {
        log(`${f0(size)} routes: ${restSeconds} s idle for the RSS at rest`);
        await new Promise((r) => setTimeout(r, restSeconds * 1000));
        rssAtRest = memoryMiB(sb.pid).rss;
      }
      memory.push({ routes: size, readyMs: sb.readyMs, rss: settled.rss, peak: memoryMiB(sb.pid).peak, rssAfterLoad: after.rss, rssAtRest, sustained });
      await sb.stop();
      if (size === 1) {
        const quiet = await startSwitchboardProxy(redis.url, size, false, { profileName: values.profile ? 'switchboard-1-nolog' : undefined });
        cleanup.push(() => quiet.stop());
        sbNoLog = { ...(await measureScraped('switchboard, 1 route, access log off', quiet.port, quiet.control, () => cpuSeconds(quiet.pid))), ref: row.ref, refCpuUs: row.refCpuUs };
        rows.push(sbNoLog);
        await quiet.stop();
        const two = await startSwitchboardProxy(redis.url, size, true, { workers: 2 });
        cleanup.push(() => two.stop());
        // The primary (metrics aggregation, the feed's notices) and both workers: the CPU of the whole tree.
        const primary0 = { cpu: cpuSeconds(two.pid), at: Date.now() };
        workersRow = await pairedRows('switchboard, 1 route, --workers 2', bareRun, undiciRun, () => measureScraped('switchboard, 1 route, --workers 2', two.port, two.control, () => treeCpuSeconds(two.pid)));
        // Over the rounds, bare runs included: a floor of the primary's share while the workers are loaded.
        workersPrimaryCpu = (cpuSeconds(two.pid) - primary0.cpu) / ((Date.now() - primary0.at) / 1000);
        rows.push(workersRow);
        await two.stop();
      }
    }

    let breakdown: string[] = [];
    const one = sbRows.get(1);
    if (values.profile && one?.undici) {
      await undici.stop();
      const file = (name: string) => path.join(PROFILE_DIR, `${name}.cpuprofile`);
      breakdown = breakdownTable([
        { name: 'bare undici', file: file('bare-undici'), cpuUs: one.undici.cpuUs ?? NaN },
        { name: 'switchboard', file: file('switchboard-1'), cpuUs: one.cpuUs ?? NaN },
      ]);
    }

    log('timing full reloads of the 100,000-route table');
    const reload: ReloadTiming = await timeReloadAsSwitchboard(redis.url, 5);

    log(`registration-to-routable: 1 registry + 2 proxies on the ${f0(written)}-route table`);
    // Fallback discovery off here: it would find the deregistered backend, still running on its assigned
    // port, and route it again, by design; the point is the change feed.
    await bare.stop();
    const noDiscovery = configFile({ discovery: { enabled: false } });
    cleanup.push(async () => rmSync(path.dirname(noDiscovery), { recursive: true, force: true }));
    const registry = await startRegistry(redis.url, noDiscovery);
    cleanup.push(() => registry.stop());
    const proxies = [await startSwitchboardProxy(redis.url, written, true, { config: noDiscovery }), await startSwitchboardProxy(redis.url, written, true, { config: noDiscovery })];
    for (const p of proxies) cleanup.push(() => p.stop());
    const prop = await measurePropagation({
      control: `http://127.0.0.1:${registry.control}`,
      token: TOKEN,
      proxies: proxies.map((p) => `http://127.0.0.1:${p.port}`),
      tool: 'regbench',
      backendUrl: `http://127.0.0.1:${regPort}`,
      iterations: registrations,
      budgetMs: 90_000,
    });
    log(`${prop.iterations} registrations, ${prop.timeouts} timeouts`);

    const body = report({ started, rows, sbRows, sbNoLog, workersRow, workersPrimaryCpu, nginxRow, memory, reload, prop, breakdown });
    if (!values['print-only']) writeSection('proxy', body);
    process.stdout.write(`${body}\n`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await store.close();
    await redis.stop();
  }
}

function report(r: {
  started: Date;
  rows: Row[];
  sbRows: Map<number, Row>;
  sbNoLog: Row | null;
  workersRow: Row | null;
  /** The --workers primary's CPU while its workers were loaded, in cores. */
  workersPrimaryCpu: number | null;
  nginxRow: Row | null;
  /** With --profile: where the CPU of a request goes, switchboard (1 route) beside bare undici. */
  breakdown: string[];
  memory: Memory[];
  reload: ReloadTiming;
  prop: Awaited<ReturnType<typeof measurePropagation>>;
}): string {
  const base = r.rows.find((x) => x.name.startsWith('bare http-proxy'))!;
  const direct = r.rows[0];
  const refOf = (x: Row) => x.ref ?? base.load;
  const line = (x: Row) =>
    `| ${x.name} | ${f0(x.load.perSecond)} | ${f2(x.load.perSecond / direct.load.perSecond)} | ${f2(x.load.perSecond / refOf(x).perSecond)}${x.ref ? ` (${f0(x.ref.perSecond)})` : ''} | ${f2(x.load.p50ms)} | ${f2(x.load.p99ms)} | ${f2(x.load.p99ms / refOf(x).p99ms)}${x.ref ? ` (${f2(x.ref.p99ms)})` : ''} | ${x.cpuUs === null ? '-' : f0(x.cpuUs)} | ${x.load.errors} |`;
  const opts = [`--seconds ${seconds}`, `--connections ${connections}`, `--registrations ${registrations}`, `--rest-seconds ${restSeconds}`, `--sustain-seconds ${sustainSeconds}`, `--pairs ${pairs}`].join(' ');
  const out: string[] = [
    '## Proxy: throughput, latency, memory, reload, registration-to-routable',
    '',
    `Command: \`npm run build && npm run bench:proxy -- ${opts}\``,
    `Run: ${r.started.toISOString()}, ${machine()}. wrk, the backend, the proxy under test and redis-server share the machine, with other work running on it.`,
    `Load: wrk, 1 thread, ${connections} keep-alive connections, ${seconds} s per row after a ${warmup} s warm-up, \`GET /${HIT_TOOL}/\`; the backend is a node:http server in its own process answering 100 bytes. Each proxy runs in its own process; CPU is that process's user+system time per request (nginx: master + worker).`,
    `Each switchboard row is paired with bare http-proxy runs (same process, in brackets) so that a drift in the machine's load between rows does not show as a difference: a table-size row is ${pairs} alternated pairs (a bare run, then the switchboard run), each figure the median of its ${pairs} runs and its ratios to the median of the ${pairs} bare runs (every pair under Targets); the other switchboard rows are one run each, paired with the bare run just before it.`,
    `Switchboard: \`switchboard proxy\` (dist/src/cli.js, the compiled CLI) on a redis-server started by the bench, the routes written through RedisStore as the registry writes them, one backend per tool; the requests hit one tool among all of them. Access log on (pino, async, to /dev/null) unless said otherwise. Plain requests go through undici (WebSocket upgrades, not measured here, through http-proxy).`,
    '',
    '| proxy | requests/s | vs direct | vs bare http-proxy | p50 ms | p99 ms | p99 vs bare http-proxy | proxy CPU us/request | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.rows.map(line),
    '',
  ];
  if (r.nginxRow) {
    const n = r.nginxRow.load;
    out.push(
      `Switchboard / nginx: ${[...r.sbRows].map(([size, x]) => `${routesLabel(size)} ${f2(x.load.perSecond / n.perSecond)}x req/s, p99 ${f2(x.load.p99ms / n.p99ms)}x`).join('; ')}.`,
      '',
    );
  } else {
    out.push('nginx: not installed, not run.', '');
  }
  out.push(
    '### Memory of the switchboard proxy process',
    '',
    `| routes | ready after (ms, spawn to table loaded) | RSS 2 s after ready (MiB) | RSS after the load run (MiB) | peak RSS (MiB) | RSS after ${restSeconds} s idle (MiB) |`,
    '|---|---|---|---|---|---|',
    ...r.memory.map((m) => `| ${f0(m.routes)} | ${f0(m.readyMs)} | ${f1(m.rss)} | ${f1(m.rssAfterLoad)} | ${f1(m.peak)} | ${m.rssAtRest === undefined ? '-' : f1(m.rssAtRest)} |`),
    '',
    ...r.memory
      .filter((m) => m.sustained)
      .map((m) => `Under sustained load (${f0(m.routes)} routes, ${sustainSeconds} s more of the same load right after its row, ${f0(m.sustained!.perSecond)} requests/s): RSS ${f1(m.sustained!.rss)} MiB at the end, at most ${f1(m.sustained!.maxRss)} MiB sampled every 250 ms.`),
    '',
    `Peak RSS is what a container limit must allow. V8 gives memory back on its own once the process idles (its memory reducer, seconds to tens of seconds later): the last column, read after the load run of the largest table.`,
    '',
    '### Full reload of the table (in a process with switchboard\'s node flags, Redis on loopback)',
    '',
    `${f0(r.reload.backends)} backends, 5 reloads each: store.snapshot() p50 ${f0(r.reload.snapshotMs.p50)} ms (max ${f0(r.reload.snapshotMs.max)}); RouteTable.fromSnapshot p50 ${f0(r.reload.buildMs.p50)} ms (max ${f0(r.reload.buildMs.max)}); TableFeed full reload (read + build + swap) p50 ${f0(r.reload.reloadMs.p50)} ms (max ${f0(r.reload.reloadMs.max)}).`,
    '',
  );
  const reg = summary(r.prop.register);
  const dereg = summary(r.prop.deregister);
  const regAll = summary(r.prop.registerAll);
  const deregAll = summary(r.prop.deregisterAll);
  const largest = r.memory[r.memory.length - 1]?.routes ?? 0;
  out.push(
    '### Registration-to-routable',
    '',
    `1 registry process + 2 \`switchboard proxy\` processes on one redis-server, ${f0(largest)} routes in the table, fallback discovery off (it would route the deregistered but still running backend again through its port assignment, by design). ${r.prop.iterations} rounds of: PUT a backend through the API, poll both proxies ~1 ms apart until each routes to it; DELETE it, poll until each answers 404/503. Times from the API's answer to the first poll that saw the change (includes that poll's round trip); ${r.prop.timeouts} polls gave up after 2 s.`,
    '',
    '| change | p50 ms (per proxy) | p99 ms (per proxy) | max ms | p50 ms (all proxies) | p99 ms (all proxies) |',
    '|---|---|---|---|---|---|',
    `| registration to routable | ${f1(reg.p50)} | ${f1(reg.p99)} | ${f1(reg.max)} | ${f1(regAll.p50)} | ${f1(regAll.p99)} |`,
    `| deregistration to 404/503 | ${f1(dereg.p50)} | ${f1(dereg.p99)} | ${f1(dereg.max)} | ${f1(deregAll.p50)} | ${f1(deregAll.p99)} |`,
    '',
    '### Targets (issue 3)',
    '',
  );
  // One bare run's p99 is a noisy reference (its tail moved 8-17 ms between runs of one session): the
  // median p99 of every bare run of this bench is reported beside the paired ratio.
  const bareRuns = new Set<LoadResult>([base.load]);
  for (const x of r.rows) {
    if (x.pairs) for (const p of x.pairs) bareRuns.add(p.bare);
    else if (x.ref && !r.rows.some((y) => y.ref === x.ref && y.pairs)) bareRuns.add(x.ref);
  }
  const bareP99 = [...bareRuns].map((l) => l.p99ms);
  const medianBareP99 = median(bareP99);
  for (const [size, x] of r.sbRows) {
    const rps = x.load.perSecond / refOf(x).perSecond;
    const p99 = x.load.p99ms / refOf(x).p99ms;
    const cpu = x.cpuUs !== null && x.refCpuUs ? ` CPU per request ${f2(x.cpuUs / x.refCpuUs)}x.` : '';
    const p99m = x.load.p99ms / medianBareP99;
    out.push(
      `- ${routesLabel(size)}: requests/s ${f2(rps)}x bare http-proxy (target >= 0.9) ${verdict(rps >= 0.9)}; p99 ${f2(p99)}x the paired ${x.pairs ? 'runs' : 'run'} (target <= 1.2) ${verdict(p99 <= 1.2)}, ${f2(p99m)}x the median of the ${bareP99.length} bare runs (${f2(medianBareP99)} ms) ${verdict(p99m <= 1.2)}.${cpu}`,
    );
    if (x.pairs && x.pairs.length > 1) {
      const each = (f: (p: { sb: LoadResult; bare: LoadResult }) => number) => x.pairs!.map((p) => f2(f(p))).join(', ');
      out.push(`  Pair by pair: requests/s ${each((p) => p.sb.perSecond / p.bare.perSecond)}x; p99 ${each((p) => p.sb.p99ms / p.bare.p99ms)}x.`);
    }
  }
  const mem = r.memory.find((m) => m.routes === 100_000);
  const mem1 = r.memory.find((m) => m.routes === 1);
  if (mem) {
    const busy = Math.max(mem.rss, mem.rssAfterLoad, mem.peak, mem.sustained?.maxRss ?? 0);
    const rest = mem.rssAtRest === undefined ? '' : `; at rest (${restSeconds} s idle after the load run) ${f1(mem.rssAtRest)} MiB ${verdict(mem.rssAtRest <= 150)}`;
    out.push(`- Memory, 100,000 routes (target <= 150 MiB): ${f1(mem.rss)} MiB RSS 2 s after loading, ${f1(mem.rssAfterLoad)} MiB after the load run, peak ${f1(mem.peak)} MiB${mem.sustained ? `, at most ${f1(mem.sustained.maxRss)} MiB in ${sustainSeconds} s more load` : ''} ${verdict(busy <= 150)}${rest} (1 route: ${f1(mem1?.rss ?? NaN)} / ${f1(mem1?.rssAfterLoad ?? NaN)} MiB).`);
  }
  out.push(`- Full reload of ${f0(r.reload.backends)} routes: ${f0(r.reload.reloadMs.p50)} ms p50 (target <= 1000 ms) ${verdict(r.reload.reloadMs.p50 <= 1000)}; slowest of 5: ${f0(r.reload.reloadMs.max)} ms ${verdict(r.reload.reloadMs.max <= 1000)}.`);
  out.push(`- Registration-to-routable: p50 ${f1(reg.p50)} ms, p99 ${f1(reg.p99)} ms per proxy, p99 ${f1(regAll.p99)} ms on every proxy (target p99 <= 100 ms) ${verdict(regAll.p99 <= 100 && r.prop.timeouts === 0)}; deregistration p99 ${f1(deregAll.p99)} ms ${verdict(deregAll.p99 <= 100 && r.prop.timeouts === 0)}.`);
  out.push('', ...engineSection(r));
  if (r.breakdown.length) {
    out.push(
      '',
      '#### Where a request\'s CPU goes (`--profile`: V8 CPU profiles of the 1-route process and of bare undici over all their runs, each category\'s share of the main thread\'s busy time times the process\'s CPU per request; the CPU of V8\'s helper threads, parallel collection above all, is thereby spread over the categories in proportion)',
      '',
      ...r.breakdown,
    );
  }
  if (r.sbNoLog) {
    const on = r.sbRows.get(1)!;
    out.push(`- Access log: 1 route with the log on ${f0(on.load.perSecond)} req/s, ${f0(on.cpuUs ?? NaN)} us CPU/request; off ${f0(r.sbNoLog.load.perSecond)} req/s, ${f0(r.sbNoLog.cpuUs ?? NaN)} us CPU/request.`);
  }
  return out.join('\n');
}

/**
 * Switchboard against the engine it is built on: bare undici's runs alternated with its own, round by
 * round, with the access log on and /metrics scraped every second.
 */
function engineSection(r: { rows: Row[]; sbRows: Map<number, Row>; workersRow: Row | null; workersPrimaryCpu: number | null; nginxRow: Row | null }): string[] {
  const rows = r.rows.filter((x) => x.undici);
  const each = (xs: number[]) => xs.map(f2).join(', ');
  const out = [
    '### Per-request cost against bare undici (same rounds, access log on, /metrics scraped every second)',
    '',
    '| switchboard | CPU us/request | bare undici CPU us/request | CPU ratio (median; each round) | p99 ms | bare undici p99 ms | p99 ratio (each round) | bare http-proxy CPU us/request |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((x) => {
      const u = x.undici!;
      return `| ${x.name} | ${f0(x.cpuUs ?? NaN)} | ${f0(u.cpuUs ?? NaN)} | ${f2(median(u.cpuRatios))} (${each(u.cpuRatios)}) | ${f2(x.load.p99ms)} | ${f2(u.load.p99ms)} | ${f2(median(u.p99Ratios))} (${each(u.p99Ratios)}) | ${f0(x.refCpuUs ?? NaN)} |`;
    }),
    '',
    '#### Targets: CPU per request <= 1.10x bare undici, p99 <= 1.25x, ahead of bare http-proxy',
    '',
  ];
  for (const size of [1, 100_000]) {
    const x = r.sbRows.get(size);
    if (!x?.undici) continue;
    const cpu = median(x.undici.cpuRatios);
    const p99 = median(x.undici.p99Ratios);
    const ahead = x.cpuUs !== null && x.refCpuUs ? x.cpuUs < x.refCpuUs : false;
    out.push(`- ${routesLabel(size)}: CPU ${f2(cpu)}x ${verdict(cpu <= 1.1)}; p99 ${f2(p99)}x ${verdict(p99 <= 1.25)}; CPU ${ahead ? 'below' : 'not below'} bare http-proxy's (${f0(x.cpuUs ?? NaN)} vs ${f0(x.refCpuUs ?? NaN)} us) ${verdict(ahead)}.`);
  }
  if (r.nginxRow) out.push(`- nginx beside them (1 worker, access log): ${f0(r.nginxRow.cpuUs ?? NaN)} us CPU/request, p99 ${f2(r.nginxRow.load.p99ms)} ms, ${f0(r.nginxRow.load.perSecond)} req/s.`);
  const one = r.sbRows.get(1);
  if (r.workersRow && one) {
    const w = r.workersRow;
    out.push(
      `- \`--workers 2\` against one process (1 route): ${f0(w.load.perSecond)} vs ${f0(one.load.perSecond)} req/s (${f2(w.load.perSecond / one.load.perSecond)}x), CPU ${f0(w.cpuUs ?? NaN)} vs ${f0(one.cpuUs ?? NaN)} us/request (primary and workers), p99 ${f2(w.load.p99ms)} vs ${f2(one.load.p99ms)} ms. ` +
        `The primary (metrics aggregation at each scrape, the feed) used ${f2(r.workersPrimaryCpu ?? NaN)} of a core meanwhile: not the bottleneck ${verdict((r.workersPrimaryCpu ?? 1) < 0.25)}.`,
    );
  }
  return out;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
