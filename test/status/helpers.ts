import { callApi } from '../support/api';
import http from 'node:http';
import { startSwitchboard, type Roles, type Switchboard } from '../../src/app';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/logger';
import type { Store } from '../../src/registry/store';
import { engineEnv } from '../support/engine';

export const ADMIN_TOKEN = 'status-admin-token-0123456789abcdef';

/** A switchboard in this process on free loopback ports. */
export async function startInProcess(roles: Roles, store?: Store, env: Record<string, string> = {}): Promise<Switchboard & { control: string; proxyUrl: string }> {
  const config = loadConfig({
    env: { ...engineEnv(), ...env },
    overrides: { adminToken: ADMIN_TOKEN, proxy: { port: 0, accessLog: false, feedPollMs: 200 }, control: { port: 0 } },
  });
  const sb = await startSwitchboard({ config, roles, logger: silentLogger(), store, defaultMetrics: false });
  return Object.assign(sb, { control: `http://127.0.0.1:${sb.controlPort}`, proxyUrl: `http://127.0.0.1:${sb.proxyPort ?? 0}` });
}

export function api(control: string, method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; body: any }> {
  return callApi(control, token, method, path, body);
}

export async function register(control: string, tool: string, id: string, url: string, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await api(control, 'PUT', `/v1/tools/${tool}/backends/${id}`, { url, ...extra });
  if (r.status !== 200) throw new Error(`register ${tool}/${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
