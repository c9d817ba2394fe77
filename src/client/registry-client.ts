import type { StatusReport } from './status-report';
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

/**
 * Whether asking again later may succeed: no answer at all (refused, reset, timed out), an answer that is
 * not the registry's, or a status that says "not now" (408, 429, 5xx). Anything else is a refusal that
 * repeating the same request will not change (bad token, invalid input, port conflict).
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof RegistryHttpError)) return true;
  return err.code === 'invalid_response' || err.status === 408 || err.status === 429 || err.status >= 500;
}

export interface BackendView {
  tool: string;
  id: string;
  url: string;
  source: string;
  registeredAt: string;
  lastHeartbeat: string;
  expiresAt: string;
  ttl: number;
  leaseSecondsLeft: number;
  clientVersion?: string;
  instance?: string;
  restarts?: number;
  [k: string]: unknown;
}

export interface ToolListing {
  tool: string;
  backends: BackendView[];
  assignments: Array<{ tool: string; host: string; port: number; createdAt: string }>;
}

/** A ban as the API answers it (docs/openapi.json, Block). */
export interface BlockView {
  id: string;
  cidr?: string;
  userAgent?: string;
  tool?: string;
  reason?: string;
  updatedAt: string;
  expiresAt?: string;
}

/** The service side of the registration API: what launchers and operator commands call. */
export class RegistryClient {
  constructor(private readonly opts: ClientOptions) {}

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const res = await fetch(new URL(path, this.opts.registry), {
      method,
      headers: {
        authorization: `Bearer ${this.opts.token}`,
        'user-agent': `switchboard/${VERSION}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs ?? this.opts.timeoutMs ?? 5000),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // Something in between (a load balancer's error page) answered: keep the status, it says more.
      if (res.ok) throw new RegistryHttpError(res.status, 'invalid_response', 'the registry answered with a body that is not JSON');
    }
    if (!res.ok) {
      const e = (json.error ?? {}) as { code?: string; message?: string; field?: string | null };
      throw new RegistryHttpError(res.status, e.code ?? 'http_error', e.message ?? `HTTP ${res.status}`, e.field);
    }
    return json as T;
  }

  /**
   * `instance`: the caller's run, which owns the lease from this heartbeat on. `restarts`: how often that
   * run restarted the backend's process (`run --restart`).
   */
  heartbeat(tool: string, id: string, url: string, ttl?: number, instance?: string, restarts?: number, prefix?: string): Promise<BackendView> {
    return this.call('PUT', `/v1/tools/${encodeURIComponent(tool)}/backends/${encodeURIComponent(id)}`, {
      url,
      ...(ttl !== undefined ? { ttl } : {}),
      clientVersion: VERSION,
      ...(instance !== undefined ? { instance } : {}),
      ...(restarts !== undefined ? { restarts } : {}),
      ...(prefix !== undefined ? { prefix } : {}),
    });
  }

  /**
   * `timeoutMs` overrides the client's limit: a launcher shutting down has a budget of its own. With
   * `instance` the registry removes the backend only while that instance owns it (409 instance_mismatch
   * otherwise).
   */
  async deregister(tool: string, id: string, timeoutMs?: number, instance?: string): Promise<void> {
    const query = instance !== undefined ? `?instance=${encodeURIComponent(instance)}` : '';
    await this.call('DELETE', `/v1/tools/${encodeURIComponent(tool)}/backends/${encodeURIComponent(id)}${query}`, undefined, timeoutMs);
  }

  /** The tool's backends and assignments (its own token or the admin's); null when it has neither. */
  async getTool(tool: string): Promise<ToolListing | null> {
    try {
      return await this.call<ToolListing>('GET', `/v1/tools/${encodeURIComponent(tool)}`);
    } catch (err) {
      if (err instanceof RegistryHttpError && err.status === 404) return null;
      throw err;
    }
  }

  allocatePort(tool: string, host: string): Promise<{ tool: string; host: string; port: number }> {
    return this.call('POST', '/v1/ports', { tool, host });
  }

  /** A proxy's report that the tool answers on its assignment host:port; the registry verifies and heals. */
  reportDiscovery(tool: string, host: string, port: number, timeoutMs?: number): Promise<BackendView> {
    return this.call('POST', `/v1/tools/${encodeURIComponent(tool)}/discoveries`, { host, port }, timeoutMs);
  }

  issueToken(tool: string): Promise<{ id: string; token: string }> {
    return this.call('POST', `/v1/tools/${encodeURIComponent(tool)}/tokens`, {});
  }

  async revokeToken(tool: string, id: string): Promise<void> {
    await this.call('DELETE', `/v1/tools/${encodeURIComponent(tool)}/tokens/${encodeURIComponent(id)}`);
  }

  /** Creates or replaces a ban (admin token); the registry refuses bad fields by name. */
  putBlock(id: string, body: Record<string, unknown>): Promise<BlockView> {
    return this.call('PUT', `/v1/blocks/${encodeURIComponent(id)}`, body);
  }

  listBlocks(): Promise<{ blocks: BlockView[] }> {
    return this.call('GET', '/v1/blocks');
  }

  async removeBlock(id: string): Promise<void> {
    await this.call('DELETE', `/v1/blocks/${encodeURIComponent(id)}`);
  }

  /** Every tool with its backends and assignments (admin token). */
  listTools(): Promise<{ tools: ToolListing[] }> {
    return this.call('GET', '/v1/tools');
  }

  /**
   * GET /status.json of the registry's control port: table version, store state, passive health. It needs
   * no token, so none is sent.
   */
  async status(): Promise<StatusReport> {
    const res = await fetch(new URL('/status.json', this.opts.registry), {
      headers: { 'user-agent': `switchboard/${VERSION}`, accept: 'application/json' },
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new RegistryHttpError(res.status, 'http_error', `GET /status.json answered ${res.status}`);
    const json = (await res.json().catch(() => null)) as StatusReport | null;
    if (!json || typeof json !== 'object' || !Array.isArray(json.tools)) {
      throw new RegistryHttpError(res.status, 'invalid_response', 'GET /status.json did not answer a status report');
    }
    return json;
  }
}
