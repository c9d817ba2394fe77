import { isTransient, type RegistryClient } from '../client/registry-client';
import type { Logger } from '../logger';
import { Backoff } from './backoff';
import { failureFields } from './errors';
import { sleep } from './sleep';

export interface PortChoice {
  host: string;
  port: number;
  /** `registry`: the tool's assignment; `fallback`: --port, because the registry could not answer. */
  from: 'registry' | 'fallback';
}

export interface ObtainOptions {
  client: RegistryClient;
  tool: string;
  host: string;
  /** --port: used when the registry cannot answer the first request, so a registry outage never keeps a tool down. */
  fallbackPort?: number;
  logger: Logger;
  signal: AbortSignal;
  random?: () => number;
}

const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 10_000;

/** Refused for good (bad token, invalid host): starting the child without a port is pointless. */
export class AssignmentRefused extends Error {}

/**
 * The tool's port on this host (POST /v1/ports answers the existing assignment, so a restart gets the same
 * port). The child needs PORT before it starts, so while the registry cannot answer this keeps asking with
 * capped backoff, unless a fallback port was given. Answers null when the signal aborts first.
 */
export async function obtainPort(opts: ObtainOptions): Promise<PortChoice | null> {
  const { client, tool, host, logger, signal } = opts;
  const backoff = new Backoff(RETRY_BASE_MS, RETRY_CAP_MS, opts.random);
  // A stop must not wait for a hung registry's request timeout: nothing has started yet.
  const stopped = new Promise<null>((resolve) => signal.addEventListener('abort', () => resolve(null), { once: true }));
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      const a = await Promise.race([client.allocatePort(tool, host), stopped]);
      if (a === null) return null;
      logger.info({ event: 'assignment.obtained', host: a.host, port: a.port }, 'port assignment obtained');
      return { host: a.host, port: a.port, from: 'registry' };
    } catch (err) {
      if (!isTransient(err)) {
        logger.error({ event: 'assignment.failed', attempt, ...failureFields(err) }, 'registry refused the port request');
        throw new AssignmentRefused(`the registry refused the port request: ${(err as Error).message}`);
      }
      if (opts.fallbackPort !== undefined) {
        logger.warn({ event: 'assignment.fallback', host, port: opts.fallbackPort, ...failureFields(err) }, 'registry unreachable; starting on the fallback port');
        return { host, port: opts.fallbackPort, from: 'fallback' };
      }
      const wait = backoff.next();
      logger.warn({ event: 'assignment.failed', attempt, retryInMs: wait, ...failureFields(err) }, 'port request failed; retrying');
      await sleep(wait, signal);
    }
  }
  return null;
}
