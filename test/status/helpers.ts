import { callApi } from '../support/api';
import type { Roles } from '../../src/app';
import type { Store } from '../../src/registry/store';
import { startInProcess as startShared, type InProcess, type InProcessOptions } from '../support/in-process';

export const ADMIN_TOKEN = 'status-admin-token-0123456789abcdef';

/** A switchboard in this process on free loopback ports. */
export function startInProcess(roles: Roles, store?: Store, env: Record<string, string> = {}, more: Partial<InProcessOptions> = {}): Promise<InProcess> {
  return startShared({ adminToken: ADMIN_TOKEN, roles, store, env, ...more });
}

export function api(control: string, method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; body: any }> {
  return callApi(control, token, method, path, body);
}

export async function register(control: string, tool: string, id: string, url: string, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await api(control, 'PUT', `/v1/tools/${tool}/backends/${id}`, { url, ...extra });
  if (r.status !== 200) throw new Error(`register ${tool}/${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
