import http from 'node:http';
import type { Duplex } from 'node:stream';
import { answerClientError } from './client-error';
import { listen } from './net/listen';
import type express from 'express';
import type { Config } from './config';
import { controlAdmission } from './control/admission';
import { createControlApp, type Readiness } from './control/app';
import { ControlHosts, configuredHosts } from './control/control-hosts';
import { controlListener, type FastPath } from './control/fast-paths';
import { StatusSource } from './control/status-data';
import { Healer } from './discovery/healer';
import type { OnDemandDiscovery } from './discovery/on-demand';
import { Reconciler } from './discovery/reconciler';
import { proxyDiscovery } from './discovery/setup';
import type { Logger } from './logger';
import { Metrics } from './metrics';
import { ListeningSockets } from './net/listening-sockets';
import { createProxyServer, type ProxyHooks, type ProxyServer } from './proxy/server';
import { TableFeed } from './table/table-feed';
import { createRegistryApi } from './registry/api';
import { LeaseExpirer } from './registry/expirer';
import { Leadership } from './registry/leadership';
import { EpochRecovery } from './registry/recovery';
import { Registry } from './registry/registry';
import type { Store } from './registry/store';
import { createStore } from './registry/store-factory';
import { resolveAdminToken, type Authenticator } from './registry/tokens';
import { tokenSigner } from './registry/token-keys';
import { startDurability, type Durability } from './registry/durability';

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
  /** The process's route table: proxies route on it; a registry-only process follows it for its metrics. */
  feed: TableFeed | null;
  registry: Registry | null;
  expirer: LeaseExpirer | null;
  leadership: Leadership | null;
  /** Registry side of fallback discovery: writes and counts heals (null when off or not a registry). */
  healer: Healer | null;
  reconciler: Reconciler | null;
  /** The registry's copy of what heartbeats cannot rebuild, and its write-back after a store loss. */
  durability: Durability | null;
  /** The proxy's on-demand discovery (null when off or not a proxy). */
  discovery: OnDemandDiscovery | null;
  proxy: ProxyServer | null;
  stop(): Promise<void>;
}

/** The proxy's hooks into on-demand discovery: wired here, where both parts are known. */
function discoveryHooks(discovery: OnDemandDiscovery | null): ProxyHooks | undefined {
  if (!discovery) return undefined;
  return { onNoLiveBackend: (tool, route) => discovery.backendFor(tool, route), onDiscoveredFailed: (_tool, backend) => discovery.forget(backend) };
}

/**
 * One Switchboard process: the data plane (proxy), the control plane (registry), or both on one store.
 * The proxy only ever reads its snapshot; only the registry writes the store.
 */
export async function startSwitchboard(opts: StartOptions): Promise<Switchboard> {
  const { config, roles, logger } = opts;
  const controlHosts = new ControlHosts(configuredHosts(config), config.host);
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true, perToolLabels: config.metrics.perToolLabels });
  const store = opts.store ?? (await createStore(config, logger));
  const routers: express.Router[] = [];
  // Admission first: no route, fast or not, answers a request it refuses.
  const fastPaths: FastPath[] = [controlAdmission(controlHosts, (reason) => metrics.controlRefused.inc({ reason }))];
  // Switchboard's own sockets, which the proxy never forwards to; the ports the kernel picks are added once known.
  const listening = new ListeningSockets(config.host, [config.proxy.port, config.control.port]);
  const readiness: Array<() => Promise<Readiness>> = [...(opts.readiness ?? [])];

  let registry: Registry | null = null;
  let leadership: Leadership | null = null;
  let expirer: LeaseExpirer | null = null;
  let adminToken: string | null = null;
  let healer: Healer | null = null;
  let reconciler: Reconciler | null = null;
  let auth: Authenticator | null = null;
  if (roles.registry) {
    const { signer } = tokenSigner(config, store.kind, logger);
    registry = new Registry({ store, config, metrics, logger, signer });
    adminToken = resolveAdminToken(config, logger, opts.tokenOut);
    if (config.discovery.enabled) healer = new Healer({ registry, config, metrics, logger });
    const api = createRegistryApi({ registry, adminToken, store, logger, metrics, discoveries: healer, signer });
    auth = api.auth;
    routers.push(api.router);
    fastPaths.push(api.heartbeats.handle);
    leadership = new Leadership(store, 'expiry', config.leases.lockTtlMs, logger);
    // Only the expiry leader decides self-preservation: a former leader must not keep reporting it active.
    leadership.on('lost', () => metrics.selfPreservationActive.set(0));
    expirer = new LeaseExpirer(store, leadership, config.leases, logger, metrics);
    leadership.start();
    expirer.start();
    if (healer) {
      // The expiry lock doubles as the reconcile lock: one process does all singleton work, at no extra cost.
      reconciler = new Reconciler({ store, registry, healer, leadership, intervalMs: config.discovery.reconcileIntervalMs, settleMs: config.discovery.settleMs, logger });
      reconciler.start();
    }
    readiness.push(async () => {
      const up = await store.ping();
      return { ready: up, detail: { registry: { store: store.kind, storeUp: up, expiryLeader: leadership?.isLeader ?? false } } };
    });
  }

  let feed: TableFeed | null = null;
  let proxy: ProxyServer | null = null;
  let proxyPort: number | null = null;
  let discovery: OnDemandDiscovery | null = null;
  if (roles.proxy || roles.registry) {
    // A proxy routes on this table. A registry-only process routes nothing, yet its metrics (routes,
    // assignments, store_up) are read at scrape time and must never wait on the store, and its port
    // allocation must remember the last table after the store lost its state: it follows the table too,
    // one read at start and then the change feed.
    feed = new TableFeed(store, { pollMs: config.proxy.feedPollMs, carryOverMs: config.leases.defaultTtlSeconds * 1000, logger });
    await feed.start();
    metrics.observeTable(feed);
  }
  if (roles.proxy && feed) {
    discovery = proxyDiscovery({ config, routes: feed, healer, logger });
    proxy = createProxyServer({ config, routes: feed, logger, metrics, hooks: discoveryHooks(discovery), self: listening });
    proxyPort = await proxy.listen(config.proxy.port, config.host);
    listening.add(proxyPort);
    const f = feed;
    readiness.push(async () => {
      const table = f.current();
      return {
        ready: table !== null,
        detail: { proxy: { hasSnapshot: table !== null, storeUp: f.storeUp, version: table?.version ?? null, routes: table?.routeCount ?? 0 } },
      };
    });
  }

  // The registry allocates ports with the table it follows in mind: after the store lost its state, the
  // previous table's ports stay reserved for their tools until their heartbeats re-create them.
  if (registry && feed) registry.useRecovery(new EpochRecovery(store, feed));
  let durability: Durability | null = null;
  if (feed && auth && leadership) {
    const lead = leadership;
    const rec = reconciler;
    durability = await startDurability({
      config,
      store,
      table: feed,
      isLeader: () => lead.isLeader,
      revocations: auth,
      afterRestore: () => rec?.runOnce() ?? Promise.resolve(),
      logger,
    });
  }

  const statusSource = new StatusSource({ store, routes: feed, health: proxy?.health ?? null });
  const controlServer =
    opts.controlPort === false
      ? null
      : http.createServer(
          controlListener(createControlApp({ metrics, readiness, routers, metricsText: opts.metricsText, status: () => statusSource.report() }), fastPaths),
        );
  controlServer?.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => void answerClientError(err, socket));
  const controlPort = controlServer ? await listen(controlServer, config.control.port, config.host) : 0;
  // With port 0 in the config the kernel picks the ports: only now does the URL policy know them, and a
  // backend URL pointing at switchboard itself would loop requests through the proxy.
  registry?.policy.addSelfPort(controlPort);
  listening.add(controlPort);
  if (proxyPort) registry?.policy.addSelfPort(proxyPort);
  logger.info({ event: 'started', roles, proxyPort, controlPort, store: store.kind }, 'switchboard started');

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ event: 'shutdown' }, 'shutting down');
      const controlClosed = new Promise<void>((r) => (controlServer ? controlServer.close(() => r()) : r()));
      controlServer?.closeIdleConnections();
      if (proxy) await proxy.close();
      await durability?.stop();
      await reconciler?.stop();
      await expirer?.stop();
      await leadership?.stop();
      await feed?.stop();
      controlServer?.closeAllConnections();
      await controlClosed;
      if (!opts.store) await store.close();
    })();
    return stopping;
  };

  return { config, store, metrics, proxyPort, controlPort, adminToken, feed, registry, expirer, leadership, healer, reconciler, durability, discovery, proxy, stop };
}
