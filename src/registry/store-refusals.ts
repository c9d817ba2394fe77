import { canonicalHost } from '../net/host-names';
import { RegistryError } from './errors';
import type { UpsertBackendResult } from './types';
import type { BackendTarget } from './url-policy';

type Refused = Extract<UpsertBackendResult, { ok: false }>;

/**
 * The API's answer to a heartbeat the store refused: 409 for another tool's port or a live registration
 * of the url, 403 for a tool token outside its ports. A URL naming its host says which addresses were
 * compared: the name alone would not explain a conflict with a tool that holds the port by address.
 */
export function storeRefusal(refused: Refused, tool: string, target: BackendTarget, range: { min: number; max: number }): RegistryError {
  const given = new URL(target.url).hostname;
  const literal = canonicalHost(given) === target.host && target.addresses.length === 1;
  const at = literal ? `${given}:${target.port}` : `${given}:${target.port} (address ${target.addresses.join(', ')})`;
  switch (refused.reason) {
    case 'port_conflict':
      return new RegistryError(409, 'port_conflict', `${at} is assigned to tool "${refused.holder}"`, 'url');
    case 'registered_exists':
      return new RegistryError(409, 'registered_exists', `a registered backend of "${tool}" already has url ${target.url}`, 'url');
    case 'not_assigned':
      return new RegistryError(
        403,
        'port_not_assigned',
        `a tool token registers only ports assigned to its tool or inside ports.min..ports.max (${range.min}..${range.max}); ${at} is neither: register it with the admin token, or ask POST /v1/ports for a port`,
        'url',
      );
  }
}
