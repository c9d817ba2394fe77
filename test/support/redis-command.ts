import Redis from 'ioredis';

/** One command on a short-lived connection of its own (the harness never shares a client with the code under test). */
export async function command(port: number, args: string[], timeoutMs = 1000): Promise<unknown> {
  return (await commands(port, [args], timeoutMs))[0];
}

/** Several commands in order on one connection (e.g. one that changes the password, then more). */
export async function commands(port: number, list: string[][], timeoutMs = 1000): Promise<unknown[]> {
  const client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, commandTimeout: timeoutMs, enableReadyCheck: false });
  client.on('error', () => undefined);
  try {
    const out: unknown[] = [];
    for (const args of list) out.push(await client.call(args[0], ...args.slice(1)));
    return out;
  } finally {
    client.disconnect();
  }
}
