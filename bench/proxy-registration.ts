// Registration-to-routable and deregistration-to-unrouted, through the real API and real proxies:
// PUT a backend on the registry, then poll every proxy (~1 ms apart) until it routes to it; DELETE it,
// then poll until each proxy answers 404/503 again. Times count from the API's answer.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './lib';

export interface PropagationResult {
  iterations: number;
  /** One sample per proxy and iteration, in ms. */
  register: number[];
  deregister: number[];
  /** Per iteration, the slowest proxy: when the change reached every proxy. */
  registerAll: number[];
  deregisterAll: number[];
  /** Polls that hit the per-step deadline without seeing the change. */
  timeouts: number;
}

interface Probe {
  status: number;
  fromBackend: boolean;
}

function get(agent: http.Agent, base: URL, path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fromBackend: res.headers['x-bench-backend'] === '1' }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function send(control: URL, token: string, method: string, path: string, body?: unknown): Promise<number> {
  const r = await fetch(new URL(path, control), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  await r.arrayBuffer();
  return r.status;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `done` holds for the proxy's answer; ms from `t0`, or null at the deadline. */
async function pollUntil(agent: http.Agent, base: URL, path: string, t0: number, deadlineMs: number, done: (p: Probe) => boolean): Promise<number | null> {
  for (;;) {
    const p = await get(agent, base, path);
    const now = performance.now();
    if (done(p)) return now - t0;
    if (now - t0 > deadlineMs) return null;
    await sleep(1);
  }
}

export async function measurePropagation(opts: {
  control: string;
  token: string;
  proxies: string[];
  tool: string;
  backendUrl: string;
  iterations: number;
  budgetMs: number;
  /** Longest wait for one change to show on one proxy. */
  stepDeadlineMs?: number;
}): Promise<PropagationResult> {
  const control = new URL(opts.control);
  const proxies = opts.proxies.map((p) => ({ base: new URL(p), agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) }));
  const path = `/${opts.tool}/`;
  const backendPath = `/v1/tools/${opts.tool}/backends/b1`;
  const step = opts.stepDeadlineMs ?? 2000;
  const result: PropagationResult = { iterations: 0, register: [], deregister: [], registerAll: [], deregisterAll: [], timeouts: 0 };
  const stopAt = Date.now() + opts.budgetMs;
  const wave = async (into: number[], all: number[], t0: number, done: (p: Probe) => boolean) => {
    const times = await Promise.all(proxies.map((p) => pollUntil(p.agent, p.base, path, t0, step, done)));
    for (const t of times) {
      if (t === null) result.timeouts++;
      else into.push(t);
    }
    if (times.every((t) => t !== null)) all.push(Math.max(...(times as number[])));
  };
  try {
    for (let i = 0; i < opts.iterations && Date.now() < stopAt; i++) {
      const put = await send(control, opts.token, 'PUT', backendPath, { url: opts.backendUrl, ttl: 300, clientVersion: 'bench' });
      if (put !== 200) throw new Error(`PUT ${backendPath} answered ${put}`);
      await wave(result.register, result.registerAll, performance.now(), (p) => p.fromBackend);
      const del = await send(control, opts.token, 'DELETE', backendPath);
      if (del !== 204) throw new Error(`DELETE ${backendPath} answered ${del}`);
      await wave(result.deregister, result.deregisterAll, performance.now(), (p) => !p.fromBackend && (p.status === 404 || p.status === 503));
      result.iterations++;
    }
  } finally {
    for (const p of proxies) p.agent.destroy();
  }
  return result;
}

export function summary(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}
