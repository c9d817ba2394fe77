import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricValue, waitFor, type SwitchboardProcess } from '../support/process';

export interface Backend {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** A real backend on loopback: answers 200 with its name, or never answers (`hang`); on `port` when given. */
export async function startBackend(name: string, mode: 'ok' | 'hang' = 'ok', port = 0): Promise<Backend> {
  const server = http.createServer((req, res) => {
    if (mode === 'hang') return; // holds the request until the proxy gives up
    res.end(`${name} ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function heartbeat(p: SwitchboardProcess, tool: string, id: string, body: unknown, token = p.adminToken): Promise<Response> {
  return fetch(`${p.control}/v1/tools/${tool}/backends/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

export function assignPort(p: SwitchboardProcess, tool: string, host = '127.0.0.1'): Promise<Response> {
  return fetch(`${p.control}/v1/ports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${p.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tool, host }),
    signal: AbortSignal.timeout(10_000),
  });
}

/** GET through the proxy. */
export async function viaProxy(p: SwitchboardProcess, path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${p.proxy}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

/** The control port's /metrics; a scrape must answer even while the store is down (generous deadline). */
export async function scrape(p: SwitchboardProcess): Promise<string> {
  const res = await fetch(`${p.control}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Scrapes until a sample satisfies `want`; answers that scrape. */
export async function waitMetric(
  p: SwitchboardProcess,
  name: string,
  labels: Record<string, string>,
  want: (v: number) => boolean,
  what = `${name}${JSON.stringify(labels)}`,
): Promise<string> {
  let last = NaN;
  try {
    return await waitFor(
      what,
      async () => {
        const text = await scrape(p);
        last = metricValue(text, name, labels);
        return want(last) ? text : null;
      },
      15_000,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last value ${last})`);
  }
}
