import http from 'node:http';
import { sleep } from './wait';

/** One request the traffic sent, and how it was answered. */
export interface Answer {
  /** The proxy's base URL (http://127.0.0.1:port). */
  proxy: string;
  tool: string;
  path: string;
  /** When it was sent and when its answer ended (ms since the epoch). */
  start: number;
  end: number;
  /** 0: no answer (refused, reset, timed out). */
  status: number;
  /** The body (its first BODY_KEPT characters), or the error of a request that got no answer. */
  body: string;
}

export interface TrafficOptions {
  /** Base URLs of the proxies (SwitchboardProcess.proxy). */
  proxies: string[];
  /** The tools requested: each loop goes round them, every loop from another one. */
  tools: string[];
  /** Loops per proxy, each one request at a time (over keep-alive connections, closed when the traffic ends). */
  loops?: number;
  /** Pause after each answer, per loop. */
  pauseMs?: number;
  /** Bounds: requests per loop, and time from the start. */
  maxPerLoop?: number;
  maxMs?: number;
  /** A request whose connection stays silent this long counts as failed (status 0). */
  timeoutMs?: number;
  /** The path of a loop's `i`-th request. */
  path?: (tool: string, i: number) => string;
  /** Whether an answer is a success; the others are failures. */
  ok?: (a: Answer) => boolean;
}

/** Answers are kept for every request (hundreds of thousands in a long run): bodies are cut to this. */
const BODY_KEPT = 300;

/**
 * Requests through proxies while a fault happens, every answer recorded: `loops` clients per proxy, each
 * sending one request after another, going round the tools. Bounded in count and time; stop() ends it early.
 */
export class Traffic {
  readonly answers: Answer[] = [];
  /** The answers `ok` refused, in the order they came. */
  readonly failures: Answer[] = [];
  private stopped = false;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly loops: Promise<void>[] = [];
  private readonly opts: Required<TrafficOptions>;
  private readonly deadline: number;

  constructor(opts: TrafficOptions) {
    this.opts = { loops: 1, pauseMs: 0, maxPerLoop: 5000, maxMs: 60_000, timeoutMs: 5000, path: (tool) => `/${tool}/`, ok: (a) => a.status === 200, ...opts };
    this.deadline = Date.now() + this.opts.maxMs;
    for (const proxy of opts.proxies) for (let c = 0; c < this.opts.loops; c++) this.loops.push(this.loop(proxy, c));
  }

  /** One client: request after request, the `offset`-th tool first. */
  private async loop(proxy: string, offset: number): Promise<void> {
    const { tools, path, pauseMs, maxPerLoop } = this.opts;
    for (let i = 0; i < maxPerLoop && !this.stopped && Date.now() < this.deadline; i++) {
      const tool = tools[(i + offset) % tools.length];
      await this.one(proxy, tool, path(tool, i));
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }

  /** Answers judged a success so far. */
  get served(): number {
    return this.answers.length - this.failures.length;
  }

  /** One request, recorded with the others. */
  async one(proxy: string, tool: string, path = `/${tool}/`): Promise<Answer> {
    const start = Date.now();
    const r = await get(Number(new URL(proxy).port), path, this.agent, this.opts.timeoutMs).catch((err: Error) => ({ status: 0, body: err.message }));
    const a: Answer = { proxy, tool, path, start, end: Date.now(), status: r.status, body: r.body.slice(0, BODY_KEPT) };
    this.answers.push(a);
    if (!this.opts.ok(a)) this.failures.push(a);
    return a;
  }

  /** Ends the traffic: no request sent after this, the ones in flight answered, the connections closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.finished();
  }

  /** Waits for every loop to reach its bound (or stop()), then closes the connections. */
  async finished(): Promise<void> {
    await Promise.all(this.loops);
    this.agent.destroy();
  }
}

/**
 * A success where the backend says which path it got (test/support/backend.ts names itself: `<name> <path>`,
 * here the tool's name): answered 200 by the tool's own backend, for the very path sent.
 */
export function echoed(a: Answer): boolean {
  return a.status === 200 && a.body === `${a.tool} ${a.path}`;
}

/** How many of `answers` came with each status (0: no answer). */
export function byStatus(answers: Answer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
}

/** One GET to a loopback port: its status and body. Without an agent, over a connection of its own. */
export function get(port: number, path: string, agent: http.Agent | false = false, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
