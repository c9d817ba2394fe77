import { VERSION } from '../version';

export interface ClientOptions {
  registry: string;
  token: string;
  /** Per-request time limit, so a hung registry cannot stall a launcher's heartbeat loop. */
  timeoutMs?: number;
}

export class RegistryHttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string | null) {
    super(message);
  }
}

export interface BackendView {
  tool: string;
  id: string;
  url: string;
  source: string;
  expiresAt: string;
  leaseSecondsLeft: number;
  [k: string]: unknown;
}

/** The service side of the registration API: what launchers and operator commands call. */
export class RegistryClient {
  constructor(private readonly opts: ClientOptions) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, this.opts.registry), {
      method,
      headers: {
        authorization: `Bearer ${this.opts.token}`,
        'user-agent': `switchboard/${VERSION}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) {
      const e = (json.error ?? {}) as { code?: string; message?: string; field?: string | null };
      throw new RegistryHttpError(res.status, e.code ?? 'http_error', e.message ?? `HTTP ${res.status}`, e.field);
    }
    return json as T;
  }

  heartbeat(tool: string, id: string, url: string, ttl?: number): Promise<BackendView> {
    return this.call('PUT', `/v1/tools/${encodeURIComponent(tool)}/backends/${encodeURIComponent(id)}`, {
      url,
      ...(ttl !== undefined ? { ttl } : {}),
      clientVersion: VERSION,
    });
  }

  async deregister(tool: string, id: string): Promise<void> {
    await this.call('DELETE', `/v1/tools/${encodeURIComponent(tool)}/backends/${encodeURIComponent(id)}`);
  }

  allocatePort(tool: string, host: string): Promise<{ tool: string; host: string; port: number }> {
    return this.call('POST', '/v1/ports', { tool, host });
  }

  issueToken(tool: string): Promise<{ id: string; token: string }> {
    return this.call('POST', `/v1/tools/${encodeURIComponent(tool)}/tokens`, {});
  }

  async revokeToken(tool: string, id: string): Promise<void> {
    await this.call('DELETE', `/v1/tools/${encodeURIComponent(tool)}/tokens/${encodeURIComponent(id)}`);
  }

  listTools(): Promise<{ tools: unknown[] }> {
    return this.call('GET', '/v1/tools');
  }
}
