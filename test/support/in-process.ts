import { startSwitchboard, type Roles, type Switchboard } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { type Logger, silentLogger } from '../../src/logger';
import type { Store } from '../../src/registry/store';

export interface InProcessOptions {
  adminToken: string;
  roles?: Roles;
  /** A store of the test's own (else the config's: the embedded one). */
  store?: Store;
  /** Environment variables the config is loaded with. */
  env?: Record<string, string>;
  /** Config overrides; `proxy` is merged into the defaults below, the rest replaces. */
  overrides?: Record<string, unknown>;
  logger?: Logger;
  /** Edits the loaded config before start (settings the loader does not know yet). */
  configure?: (config: Config) => void;
  /** The status page's tick (StartOptions.statusSampleMs). */
  statusSampleMs?: number;
}

export type InProcess = Switchboard & { control: string; proxyUrl: string };

/** A switchboard in this process on free loopback ports, without an access log, following its table every 200 ms. */
export async function startInProcess(opts: InProcessOptions): Promise<InProcess> {
  const { proxy, ...rest } = (opts.overrides ?? {}) as { proxy?: Record<string, unknown> };
  const config = loadConfig({
    env: opts.env ?? {},
    overrides: {
      adminToken: opts.adminToken,
      control: { port: 0 },
      ...rest,
      proxy: { port: 0, accessLog: false, feedPollMs: 200, ...(proxy ?? {}) },
    },
  });
  opts.configure?.(config);
  const sb = await startSwitchboard({
    config,
    roles: opts.roles ?? { proxy: true, registry: true },
    logger: opts.logger ?? silentLogger(),
    store: opts.store,
    defaultMetrics: false,
    statusSampleMs: opts.statusSampleMs,
  });
  return Object.assign(sb, { control: `http://127.0.0.1:${sb.controlPort}`, proxyUrl: `http://127.0.0.1:${sb.proxyPort ?? 0}` });
}
