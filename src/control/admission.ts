import type http from 'node:http';
import type { CONTROL_REFUSAL_REASONS } from '../metrics';
import { FORWARDED_MARK } from '../proxy/header-names';
import type { ControlHosts } from './control-hosts';
import type { FastPath } from './fast-paths';

/** Why the control port refused a request before anything else saw it (switchboard_control_refused_total). */
export type ControlRefusal = (typeof CONTROL_REFUSAL_REASONS)[number];

/** Host values repeated in an error longer than this are cut: the answer is not a mirror for big headers. */
const HOST_ECHO_MAX = 256;

function refuse(res: http.ServerResponse, status: number, error: Record<string, unknown>): void {
  const body = JSON.stringify({ error: { ...error, field: null } });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

/**
 * The control port's first look at every request, in front of its fast paths and express, so no route
 * (the status page, /metrics, the registration API, heartbeats) answers what it refuses:
 * - a request a switchboard proxy forwarded (it carries FORWARDED_MARK): 403 `proxied_request`;
 * - a Host that names this port by a name it does not know (ControlHosts): 421 `unknown_host`, the way a
 *   page of a rebinding DNS name would reach it.
 */
export function controlAdmission(hosts: ControlHosts, onRefused: (reason: ControlRefusal) => void): FastPath {
  return (req, res) => {
    if (req.headers[FORWARDED_MARK] !== undefined) {
      onRefused('proxied');
      refuse(res, 403, {
        code: 'proxied_request',
        message: 'the control port does not answer requests forwarded by a switchboard proxy: reach it directly',
      });
      return true;
    }
    const host = req.headers.host;
    if (host !== undefined && !hosts.allows(host)) {
      onRefused('host');
      const shown = host.length > HOST_ECHO_MAX ? `${host.slice(0, HOST_ECHO_MAX)}...` : host;
      refuse(res, 421, {
        code: 'unknown_host',
        message: `Host "${shown}" is not a name this control port answers to: use its address, or add the name to control.allowedHosts`,
        host: shown,
      });
      return true;
    }
    return false;
  };
}
