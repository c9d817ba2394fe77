import { Worker } from 'node:worker_threads';

/**
 * How long the check of one pattern may take: one that cannot be shown safe by then is refused. The check
 * walks the pattern's paths and may take a good part of a second for an unanchored alternation, so it runs
 * in a worker thread: the registry's event loop (heartbeats) never waits on it.
 */
const CHECK_MS = 2000;
/** Checks running at once, at most: a burst of ban writes must not start a thread each. */
const PARALLEL = 2;

// The worker's code: redos-detector's verdict on workerData, sent back as { safe, error }. Its step bound
// (maxSteps) makes the verdict the same on a busy machine; the time bound above only stops a runaway.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { isSafePattern } = require(workerData.module);
try {
  const r = isSafePattern(workerData.source, {});
  parentPort.postMessage({ safe: r.safe, error: r.error ?? null });
} catch (err) {
  parentPort.postMessage({ safe: false, error: 'unreadable' });
}
`;

type Verdict = { safe: boolean; error: string | null };

/** Resolved here: an eval'd worker would look for the package from the process's working directory. */
const DETECTOR = require.resolve('redos-detector');

let running = 0;
const waiting: Array<() => void> = [];

async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function check(source: string): Promise<Verdict> {
  return new Promise((resolve) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { module: DETECTOR, source } });
    let done = false;
    const finish = (v: Verdict) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ safe: false, error: 'timedOut' }), CHECK_MS);
    worker.once('message', (v: Verdict) => finish(v));
    worker.once('error', () => finish({ safe: false, error: 'unreadable' }));
    worker.once('exit', () => finish({ safe: false, error: 'unreadable' }));
  });
}

/** Why a User-Agent pattern is refused; null: it compiles and cannot backtrack catastrophically. */
export async function unsafePattern(source: string): Promise<string | null> {
  try {
    new RegExp(source);
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  const v = await slot(() => check(source));
  if (v.safe) return null;
  if (v.error === 'unreadable') return 'uses syntax the backtracking check cannot read; write it without it';
  if (v.error === 'timedOut' || v.error === 'hitMaxSteps') return 'is too complex to be shown safe from catastrophic backtracking; simplify it';
  return 'may backtrack catastrophically (exponential or polynomial time on a crafted User-Agent); avoid nested or adjacent repetitions that can match the same text, such as (a+)+, .*a.* or an unanchored [a-z]+x';
}
