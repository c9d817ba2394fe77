// Restarts without failed requests: a tool under `switchboard run` restarted the normal way (SIGTERM to its
// launcher, then a new launcher) again and again while closed-loop clients send requests through the proxy.
// Counts the failed requests (target 0) and the latency the proxy's hold (proxy.holdMs) added to the requests
// it held, from the access log's `held` field. One `serve` process (embedded store), loopback only.
// Usage: npm run build && npm run bench:restart [-- --restarts 5 --clients 8 --steady-ms 1000]
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { writeConfig } from '../test/support/process';
import { freePort } from '../test/support/redis-server';
import { machine, percentile, ROOT, switchboardArgs, switchboardEnv, waitHttp, writeSection } from './lib';

const { values } = parseArgs({
  options: {
    restarts: { type: 'string', default: '5' },
    clients: { type: 'string', default: '8' },
    'steady-ms': { type: 'string', default: '1000' },
  },
});
const RESTARTS = Number(values.restarts);
const CLIENTS = Number(values.clients);
const STEADY_MS = Number(values['steady-ms']);
/** The whole run stops here whatever happens: it is bounded in time as well as in restarts. */
const MAX_RUN_MS = 120_000;
const TOKEN = 'bench-admin-token-0123456789abcdef';
const TOOL = 'bench-restart';
const SERVICE = path.join(ROOT, 'test', 'launcher', 'fixtures', 'service.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (n: number) => Math.round(n * 10) / 10;

interface Serve {
  proc: ChildProcess;
  control: string;
  proxyPort: number;
  /** `held` ms of each access line that has one, and the count of access lines. */
  held: number[];
  lines: number;
}

async function startServe(): Promise<Serve> {
  const controlPort = await freePort();
  const proxyPort = await freePort();
  const config = { proxy: { accessLog: true, feedPollMs: 200 }, ports: { min: 41_000, max: 41_050 }, log: { level: 'info' } };
  const proc = spawn(process.execPath, switchboardArgs('serve', '--config', writeConfig(config)), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...switchboardEnv({ SWITCHBOARD_CONTROL_PORT: String(controlPort), SWITCHBOARD_PROXY_PORT: String(proxyPort), SWITCHBOARD_ADMIN_TOKEN: TOKEN }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const s: Serve = { proc, control: `http://127.0.0.1:${controlPort}`, proxyPort, held: [], lines: 0 };
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (!l.includes('"event":"access"')) return;
    s.lines++;
    const m = /"held":([\d.]+)/.exec(l);
    if (m) s.held.push(Number(m[1]));
  });
  await waitHttp(`${s.control}/healthz`);
  return s;
}

function startLauncher(control: string): ChildProcess {
  const args = switchboardArgs('run', '--tool', TOOL, '--registry', control, '--token', TOKEN, '--ttl', '5', '--', process.execPath, SERVICE);
  return spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...switchboardEnv({ SWITCHBOARD_LOG_LEVEL: 'warn' }) }, stdio: 'ignore' });
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

async function routed(proxyPort: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`http://127.0.0.1:${proxyPort}/${TOOL}/`).catch(() => null))?.status === 200) return;
    await sleep(50);
  }
  throw new Error('the tool was never routed');
}

interface Traffic {
  ok: number;
  failed: Record<string, number>;
  latencies: number[];
}

/** Closed-loop clients on keep-alive connections until `stop` is set (and never past the deadline). */
function traffic(proxyPort: number, until: { stop: boolean; deadline: number }): Promise<Traffic> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const t: Traffic = { ok: 0, failed: {}, latencies: [] };
  const one = () =>
    new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: proxyPort, path: `/${TOOL}/`, agent, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
    });
  const loop = async () => {
    while (!until.stop && Date.now() < until.deadline) {
      const t0 = performance.now();
      const status = await one();
      t.latencies.push(performance.now() - t0);
      if (status === 200) t.ok++;
      else t.failed[status] = (t.failed[status] ?? 0) + 1;
    }
  };
  return Promise.all(Array.from({ length: CLIENTS }, loop)).then(() => {
    agent.destroy();
    return t;
  });
}

async function main(): Promise<void> {
  const sb = await startServe();
  let launcher = startLauncher(sb.control);
  const gaps: number[] = [];
  try {
    await routed(sb.proxyPort);
    const until = { stop: false, deadline: Date.now() + MAX_RUN_MS };
    const load = traffic(sb.proxyPort, until);
    await sleep(STEADY_MS);
    for (let i = 0; i < RESTARTS && Date.now() < until.deadline; i++) {
      const t0 = performance.now();
      launcher.kill('SIGTERM');
      await exited(launcher);
      launcher = startLauncher(sb.control);
      await routed(sb.proxyPort);
      gaps.push(performance.now() - t0);
      await sleep(STEADY_MS);
    }
    until.stop = true;
    const t = await load;
    await sleep(200);
    const failed = Object.values(t.failed).reduce((a, b) => a + b, 0);
    const held = [...sb.held].sort((a, b) => a - b);
    const lat = [...t.latencies].sort((a, b) => a - b);
    const row = [
      RESTARTS,
      CLIENTS,
      t.ok + failed,
      failed,
      `${round1(percentile(gaps.sort((a, b) => a - b), 0.5))} / ${round1(Math.max(...gaps))}`,
      held.length,
      round1(percentile(held, 0.5)),
      round1(percentile(held, 0.99)),
      round1(held[held.length - 1] ?? 0),
      round1(percentile(lat, 0.5)),
      failed === 0 ? 'PASS' : `FAIL ${JSON.stringify(t.failed)}`,
    ];
    const body = `## Restarts: a tool restarted through its launcher under load

Command: \`npm run build && npm run bench:restart -- --restarts ${RESTARTS} --clients ${CLIENTS} --steady-ms ${STEADY_MS}\`
Run: ${new Date().toISOString()}, ${machine()}. One \`serve\` process (embedded store, default \`proxy.holdMs\` 5000), the launchers, the tool (test/launcher/fixtures/service.js, which dies of SIGTERM) and the clients share the machine.
Each restart is the normal way: SIGTERM to the launcher (it deregisters, then stops the child), wait for it to exit, start a new launcher (new process: Node start-up, port request, child start, port wait, registration). ${CLIENTS} closed-loop clients on keep-alive connections send GET through the proxy all along, with ${STEADY_MS} ms of steady traffic between restarts. Held: requests the proxy held for the tool (the access log's \`held\` field, ms).

| restarts | clients | requests | failed | gap p50 / max ms (SIGTERM to routed again) | held requests | held p50 ms | held p99 ms | held max ms | all requests p50 ms | target: 0 failed |
|---|---|---|---|---|---|---|---|---|---|---|
| ${row.join(' | ')} |
`;
    console.log(body);
    writeSection('restart', body);
  } finally {
    launcher.kill('SIGTERM');
    await Promise.race([exited(launcher), sleep(5000)]);
    sb.proc.kill('SIGTERM');
    await Promise.race([exited(sb.proc), sleep(5000)]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
