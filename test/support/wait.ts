/** Resolves after `ms`: for pacing a loop (traffic, heartbeats), never for ordering events a test can wait for. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type Maybe<T> = T | null | undefined | false;

/**
 * Polls `fn` every `everyMs` until it answers something truthy, which it resolves with. A throw counts as
 * "not yet" (a server still starting refuses connections); the last one is named when the time is up.
 */
export async function waitFor<T>(what: string, fn: () => Maybe<T> | Promise<Maybe<T>>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}
