import net from 'node:net';
import path from 'node:path';
import { parseCidr } from '../net/networks';

function urlWith(text: string, protocols: string[]): URL | null {
  try {
    const u = new URL(text);
    return protocols.includes(u.protocol) && u.hostname !== '' ? u : null;
  } catch {
    return null;
  }
}

/** The string formats the configuration schema names ("format": ...), checked by Ajv. */
export const FORMATS: Record<string, (text: string) => boolean> = {
  'bind-host': (t) => net.isIP(t) !== 0 || /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(t),
  /** A CIDR range or a bare address. */
  cidr: (t) => parseCidr(t) !== null,
  'redis-url': (t) => urlWith(t, ['redis:', 'rediss:']) !== null,
  /** Without userinfo: the URL is logged, and credentials go in the token. */
  'registry-url': (t) => {
    const u = urlWith(t, ['http:', 'https:']);
    return u !== null && !u.username && !u.password;
  },
  'absolute-path': (t) => path.isAbsolute(t),
  /** "auto" is resolved from the environment at load time (see load.ts). */
  'data-dir': (t) => t === 'auto' || path.isAbsolute(t),
};
