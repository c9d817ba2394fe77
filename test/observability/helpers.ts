import type { SwitchboardProcess } from '../support/process';

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
