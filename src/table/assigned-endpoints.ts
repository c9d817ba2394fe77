import { canonicalHost } from '../net/host-names';
import type { ChangeEvent } from './records';
import type { Shards } from './shards';
import { SingleBackendEntry } from './tool-entry';

/**
 * Which tool holds each host:port of a table's assignments: what the proxy asks when a backend's name
 * resolves, as it connects, to an address (a name rebound since its registration may point at another
 * tool's port). Made on the first question, so a table nobody asks (every backend an IP literal: nearly
 * every deployment) never pays for it, and handed on to the next table while no change touches an
 * assignment (withChanges), so a stream of backend changes does not make it again and again. One pass over
 * the table when it is made; a question is one Map.get and a look along the port's hosts (nearly always one).
 */
export class AssignedEndpoints {
  /** Per port: host (canonical) and tool, in turn. */
  #byPort: Map<number, string[]> | null = null;

  /**
   * The tool holding `host`:`port` (any spelling of the host), or undefined. `shards`: the table's, read
   * once to make the index; any table sharing this object holds the same assignments.
   */
  holder(shards: Shards, host: string, port: number): string | undefined {
    const hosts = (this.#byPort ??= indexOf(shards)).get(port);
    if (hosts === undefined) return undefined;
    const key = canonicalHost(host) ?? host;
    for (let i = 0; i < hosts.length; i += 2) if (hosts[i] === key) return hosts[i + 1];
    return undefined;
  }
}

/** Whether a table with these events applied holds other assignments than before. */
export function changesAssignments(events: readonly ChangeEvent[]): boolean {
  return events.some((ev) => ev.changes.some((c) => c.kind === 'assignment.upsert' || c.kind === 'assignment.remove'));
}

function indexOf(shards: Shards): Map<number, string[]> {
  const byPort = new Map<number, string[]>();
  const add = (tool: string, host: string, port: number): void => {
    const key = canonicalHost(host) ?? host;
    const hosts = byPort.get(port);
    if (hosts) hosts.push(key, tool);
    else byPort.set(port, [key, tool]);
  };
  for (const shard of shards) {
    for (const e of shard.values()) {
      if (!(e instanceof SingleBackendEntry)) for (const a of e.assignments) add(e.tool, a.host, a.port);
      else if (e.host !== null) add(e.tool, e.host, e.port);
    }
  }
  return byPort;
}
