import type { Roles } from '../app';
import type { Config } from '../config';
import { tlsEnabled } from '../config/rules';
import { probeListen } from '../net/listen';

/** A port a server of this process cannot listen on, said in one line with the setting that moves it. */
export class PortError extends Error {
  override readonly name = 'PortError';
}

interface PortSetting {
  name: string;
  env: string;
  key: string;
  port(config: Config): number;
}

const PROXY: PortSetting = { name: 'proxy', env: 'SWITCHBOARD_PROXY_PORT', key: 'proxy.port', port: (c) => c.proxy.port };
const CONTROL: PortSetting = { name: 'control', env: 'SWITCHBOARD_CONTROL_PORT', key: 'control.port', port: (c) => c.control.port };
// Port 0 when HTTPS is off: nothing listens there, nothing to check.
const TLS: PortSetting = { name: 'HTTPS', env: 'SWITCHBOARD_TLS_PORT', key: 'proxy.tls.port', port: (c) => (tlsEnabled(c) ? c.proxy.tls.port : 0) };

function portError(setting: PortSetting, config: Config, err: NodeJS.ErrnoException): PortError | null {
  const at = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${setting.port(config)}`;
  const move = `set ${setting.env} (config key ${setting.key}) to another port`;
  if (err.code === 'EADDRINUSE') return new PortError(`the ${setting.name} port ${at} is already in use (another switchboard running?): ${move}`);
  if (err.code === 'EACCES') return new PortError(`the ${setting.name} port ${at} needs privileges this process lacks: ${move} (1024 or above)`);
  return null;
}

/** The servers this process listens with: the proxy and its HTTPS port (a proxy role), the control port (always). */
function settingsOf(roles: Roles): PortSetting[] {
  return roles.proxy ? [PROXY, TLS, CONTROL] : [CONTROL];
}

/**
 * Before anything starts: a second `npm start` must stop at the port the first one holds, before it
 * connects a store or generates and prints an admin token it will never use. Port 0 (the kernel picks)
 * cannot be taken.
 */
export async function checkPorts(config: Config, roles: Roles): Promise<void> {
  for (const setting of settingsOf(roles)) {
    if (setting.port(config) === 0) continue;
    const err = await probeListen(setting.port(config), config.host);
    const refused = err && portError(setting, config, err);
    if (refused) throw refused;
  }
}

/** A listen error of this process's servers (one taken between the check and the listen), as a PortError. */
export function asPortError(err: unknown, config: Config, roles: Roles): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number };
  const setting = settingsOf(roles).find((s) => s.port(config) === e?.port && s.port(config) !== 0);
  return (setting && portError(setting, config, e)) || err;
}
