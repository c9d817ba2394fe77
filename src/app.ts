import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Config } from './config';
import { createControlApp, type Readiness } from './control/app';
import type { Logger } from './logger';
import { Metrics } from './metrics';
import { createProxyServer, type ProxyServer } from './proxy/server';
import { TableFeed } from './proxy/table-feed';
import { registryRouter } from './registry/api';
import { LeaseExpirer } from './registry/expirer';
import { Leadership } from './registry/leadership';
import { Registry } from './registry/registry';
import type { Store } from './registry/store';
import { createStore } from './registry/store-factory';
import { resolveAdminToken } from './registry/tokens';

export interface Roles {
  proxy: boolean;
  registry: boolean;
}

export interface StartOptions {
  config: Config;
  roles: Roles;
  logger: Logger;
  /** A store made by the caller (tests); otherwise one is made from the config. */
  store?: Store;
  /** Skip Node's default process metrics (tests running many instances in one process). */
  defaultMetrics?: boolean;
  /** Where the generated admin token is printed when none is configured. */
  tokenOut?: NodeJS.WritableStream;
  /** False in proxy workers of `--workers N`: the primary owns the control port. */
  controlPort?: boolean;
  /** Renders /metrics instead of this process's own registry (the primary sums its workers). */
  metricsText?: () => Promise<string>;
  /** Extra readiness checks (the primary reports its workers). */
  readiness?: Array<() => Promise<Readiness>>;
}

export interface Switchboard {
  config: Config;
  store: Store;
  metrics: Metrics;
  proxyPort: number | null;
  controlPort: number;
  adminToken: string | null;
  feed: TableFeed | null;
  registry: Registry | null;
  expirer: LeaseExpirer | null;
  leadership: Leadership | null;
  proxy: ProxyServer | null;
  stop(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * One Switchboard process: the data plane (proxy), the control plane (registry), or both on one store.
 * The proxy only ever reads its snapshot; only the registry writes the store.
 */
export async function startSwitchboard(opts: StartOptions): Promise<Switchboard> {
  const { config, roles, logger } = opts;
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const store = opts.store ?? (await createStore(config, logger));
  const routers: express.Router[] = [];
  const readiness: Array<() => Promise<Readiness>> = [...(opts.readiness ?? [])];

  let registry: Registry | null = null;
  let leadership: Leadership | null = null;
  let expirer: LeaseExpirer | null = null;
  let adminToken: string | null = null;
  if (roles.registry) {
    registry = new Registry({ store, config, metrics, logger });
    adminToken = resolveAdminToken(config, logger, opts.tokenOut);
    routers.push(registryRouter({ registry, adminToken, store, logger }));
    leadership = new Leadership(store, 'expiry', config.leases.lockTtlMs, logger);
    expirer = new LeaseExpirer(store, leadership, config.leases, logger, metrics);
    leadership.start();
    expirer.start();
    readiness.push(async () => {
      const up = await store.ping();
      metrics.storeUp.set(up ? 1 : 0);
      return { ready: up, detail: { registry: { store: store.kind, storeUp: up, expiryLeader: leadership?.isLeader ?? false } } };
    });
  }

  let feed: TableFeed | null = null;
  let proxy: ProxyServer | null = null;
  let proxyPort: number | null = null;
  if (roles.proxy) {
    feed = new TableFeed(store, { pollMs: config.proxy.feedPollMs, carryOverMs: config.leases.defaultTtlSeconds * 1000, logger });
    await feed.start();
    proxy = createProxyServer({ config, routes: feed, logger, metrics });
    proxyPort = await proxy.listen(config.proxy.port, config.host);
    const f = feed;
    readiness.push(async () => {
      const table = f.current();
      return {
        ready: table !== null,
        detail: { proxy: { hasSnapshot: table !== null, storeUp: f.storeUp, version: table?.version ?? null, routes: table?.routeCount ?? 0 } },
      };
    });
  }

  const controlServer = opts.controlPort === false ? null : http.createServer(createControlApp({ metrics, readiness, routers, metricsText: opts.metricsText }));
  const controlPort = controlServer ? await listen(controlServer, config.control.port, config.host) : 0;
  logger.info({ event: 'started', roles, proxyPort, controlPort, store: store.kind }, 'switchboard started');

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ event: 'shutdown' }, 'shutting down');
      const controlClosed = new Promise<void>((r) => (controlServer ? controlServer.close(() => r()) : r()));
      controlServer?.closeIdleConnections();
      if (proxy) await proxy.close();
      await expirer?.stop();
      await leadership?.stop();
      await feed?.stop();
      controlServer?.closeAllConnections();
      await controlClosed;
      if (!opts.store) await store.close();
    })();
    return stopping;
  };

  return { config, store, metrics, proxyPort, controlPort, adminToken, feed, registry, expirer, leadership, proxy, stop };
}
