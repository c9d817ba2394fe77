import http from 'node:http';
import type { Duplex } from 'node:stream';
import { answerClientError } from './client-error';
import { listen } from './net/listen';
import type express from 'express';
import type { Config } from './config';
import { controlAdmission } from './control/admission';
import { tlsEnabled } from './config/rules';
import { createControlApp, type Readiness } from './control/app';
import { ControlHosts, configuredHosts } from './control/control-hosts';
import { controlListener, type FastPath } from './control/fast-paths';
import { StatusSource } from './control/status-data';
import { linkHost } from './control/tool-links';
import { Healer } from './discovery/healer';
import type { OnDemandDiscovery } from './discovery/on-demand';
import { Reconciler } from './discovery/reconciler';
import { proxyDiscovery } from './discovery/setup';
import type { Logger } from './logger';
import { Metrics } from './metrics';
import { ListeningSockets } from './net/listening-sockets';
import { createProxyServer, type ProxyHooks, type ProxyServer } from './proxy/server';
import { CertificateStore } from './proxy/tls/certificate-store';
import { TableFeed } from './table/table-feed';
import { createRegistryApi } from './registry/api';
import { BanSweeper } from './registry/ban-sweeper';
import { LeaseExpirer } from './registry/expirer';
import { Policies } from './registry/policies';
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
  /** The status page's tick: rates' ring every tick, the hour's charts every third (default 10 s; tests shorten it). */
  statusSampleMs?: number;
}

export interface Switchboard {
  config: Config;
  store: Store;
  metrics: Metrics;
  proxyPort: number | null;
  /** The HTTPS port (null: no certificate configured, or no proxy role). */
  tlsPort: number | null;
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
  /** Reads the HTTPS certificates again (SIGHUP); nothing without them. */
  reloadCertificates(): Promise<void>;
  stop(): Promise<void>;
}

/** The proxy's hooks into on-demand discovery: wired here, where both parts are known. */
function discoveryHooks(discovery: OnDemandDiscovery | null): ProxyHooks | undefined {
  if (!discovery) return undefined;
  return { onNoLiveBackend: (tool, route) => discovery.backendFor(tool, route), onDiscoveredFailed: (_tool, backend) => discovery.forget(backend) };
}

/** How often the expiry leader removes expired bans from the store (proxies stop applying them on time by themselves). */
const BAN_SWEEP_MS = 10_000;

/** The registry role's parts: the API, lease expiry and its leadership, fallback discovery's registry side. */
interface RegistryRole {
  registry: Registry;
  adminToken: string;
  auth: Authenticator;
  leadership: Leadership;
  expirer: LeaseExpirer;
  policies: Policies;
  healer: Healer | null;
  reconciler: Reconciler | null;
  router: express.Router;
  fastPath: FastPath;
  readiness: () => Promise<Readiness>;
}

function startRegistryRole(opts: StartOptions, store: Store, metrics: Metrics, adminToken: string): RegistryRole {
  const { config, logger } = opts;
  const { signer } = tokenSigner(config, store.kind, logger);
  const registry = new Registry({ store, config, metrics, logger, signer });
  const healer = config.discovery.enabled ? new Healer({ registry, config, metrics, logger }) : null;
  const policies = new Policies(store, config, logger);
  const api = createRegistryApi({ registry, adminToken, store, logger, metrics, discoveries: healer, signer, policies });
  const leadership = new Leadership(store, 'expiry', config.leases.lockTtlMs, logger);
  // Only the expiry leader decides self-preservation: a former leader must not keep reporting it active.
  leadership.on('lost', () => metrics.selfPreservationActive.set(0));
  const expirer = new LeaseExpirer(store, leadership, config.leases, logger, metrics);
  leadership.start();
  expirer.start();
  // The expiry lock doubles as the reconcile lock: one process does all singleton work, at no extra cost.
  const reconciler = healer
    ? new Reconciler({ store, registry, healer, leadership, intervalMs: config.discovery.reconcileIntervalMs, settleMs: config.discovery.settleMs, logger })
    : null;
  reconciler?.start();
  const readiness = async (): Promise<Readiness> => {
    const up = await store.ping();
    return { ready: up, detail: { registry: { store: store.kind, storeUp: up, expiryLeader: leadership.isLeader } } };
  };
  return { registry, adminToken, auth: api.auth, leadership, expirer, policies, healer, reconciler, router: api.router, fastPath: api.heartbeats.handle, readiness };
}

/** The proxy role: the proxy server on the followed table, with on-demand discovery when it is on. */
async function startProxyRole(opts: StartOptions, feed: TableFeed, metrics: Metrics, healer: Healer | null, self: ListeningSockets) {
  const { config, logger } = opts;
  const discovery = proxyDiscovery({ config, routes: feed, healer, logger });
  const certificates = tlsEnabled(config) ? await CertificateStore.open(config.proxy.tls, logger) : null;
  const proxy = createProxyServer({ config, routes: feed, logger, metrics, hooks: discoveryHooks(discovery), self, certificates });
  const port = await proxy.listen(config.proxy.port, config.host);
  self.add(port);
  const tlsPort = certificates ? await proxy.listenTls(config.proxy.tls.port, config.host) : null;
  if (tlsPort !== null) self.add(tlsPort);
  if (certificates) {
    certificates.watch();
    metrics.observeCertificates(certificates);
  }
  const readiness = async (): Promise<Readiness> => {
    const table = feed.current();
    return {
      ready: table !== null,
      detail: { proxy: { hasSnapshot: table !== null, storeUp: feed.storeUp, version: table?.version ?? null, routes: table?.routeCount ?? 0 } },
    };
  };
  return { proxy, port, tlsPort, discovery, readiness };
}

/** The control port's server (null in proxy workers, whose primary owns the port). */
function controlServerOf(opts: StartOptions, metrics: Metrics, readiness: Array<() => Promise<Readiness>>, routers: express.Router[], fastPaths: FastPath[], status: StatusSource): http.Server | null {
  if (opts.controlPort === false) return null;
  const app = createControlApp({ metrics, readiness, routers, metricsText: opts.metricsText, status: (view) => status.report(view) });
  const server = http.createServer(controlListener(app, fastPaths));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => void answerClientError(err, socket));
  return server;
}

/** The status page's data, its per-tool rates read from the proxy's counters (control's TrafficSource) where one runs here. */
function startStatusSource(opts: StartOptions, store: Store, feed: TableFeed | null, px: { proxy: ProxyServer; port: number } | null): StatusSource {
  const { config } = opts;
  const source = new StatusSource({
    store,
    routes: feed,
    health: px?.proxy.health ?? null,
    traffic: px?.proxy.traffic ?? null,
    proxy: px ? { port: px.port, domain: config.domain, host: linkHost(config.host) } : null,
    sampleMs: opts.statusSampleMs,
  });
  source.start();
  return source;
}

async function followTable(opts: StartOptions, store: Store, metrics: Metrics): Promise<TableFeed> {
  const { config, logger } = opts;
  const feed = new TableFeed(store, { pollMs: config.proxy.feedPollMs, carryOverMs: config.leases.defaultTtlSeconds * 1000, logger });
  await feed.start();
  metrics.observeTable(feed);
  return feed;
}

/**
 * One Switchboard process: the data plane (proxy), the control plane (registry), or both on one store.
 * The proxy only ever reads its snapshot; only the registry writes the store.
 */
export async function startSwitchboard(opts: StartOptions): Promise<Switchboard> {
  const { config, roles, logger } = opts;
  const controlHosts = new ControlHosts(configuredHosts(config), config.host);
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true, perToolLabels: config.metrics.perToolLabels });
  // Refused before anything starts: a short admin token must not get as far as opening the store.
  const adminToken = roles.registry ? resolveAdminToken(config, logger, opts.tokenOut) : null;
  const store = opts.store ?? (await createStore(config, logger));
  // Switchboard's own sockets, which the proxy never forwards to; the ports the kernel picks are added once known.
  const listening = new ListeningSockets(config.host, [config.proxy.port, config.control.port]);
  const readiness: Array<() => Promise<Readiness>> = [...(opts.readiness ?? [])];

  const reg = adminToken !== null ? startRegistryRole(opts, store, metrics, adminToken) : null;
  if (reg) readiness.push(reg.readiness);
  // A proxy routes on this table. A registry-only process routes nothing, yet its metrics (routes,
  // assignments, store_up) are read at scrape time and must never wait on the store, and its port
  // allocation must remember the last table after the store lost its state: it follows the table too,
  // one read at start and then the change feed.
  // (A primary of proxy workers that runs no registry follows nothing: its workers do.)
  const feed = roles.proxy || reg ? await followTable(opts, store, metrics) : null;
  const px = roles.proxy && feed ? await startProxyRole(opts, feed, metrics, reg?.healer ?? null, listening) : null;
  if (px) readiness.push(px.readiness);

  // The registry allocates ports with the table it follows in mind: after the store lost its state, the
  // previous table's ports stay reserved for their tools until their heartbeats re-create them.
  if (feed) reg?.registry.useRecovery(new EpochRecovery(store, feed));
  const banSweeper = reg && feed ? new BanSweeper(reg.policies, () => feed.current()?.policies.bans ?? [], () => reg.leadership.isLeader, BAN_SWEEP_MS, logger) : null;
  banSweeper?.start();
  const durability = reg && feed
    ? await startDurability({
        config,
        store,
        table: feed,
        isLeader: () => reg.leadership.isLeader,
        revocations: reg.auth,
        afterRestore: () => reg.reconciler?.runOnce() ?? Promise.resolve(),
        logger,
      })
    : null;

  const statusSource = startStatusSource(opts, store, feed, px);
  // Admission first: no route, fast or not, answers a request it refuses.
  const admission = controlAdmission(controlHosts, (reason) => metrics.controlRefused.inc({ reason }));
  const fastPaths = reg ? [admission, reg.fastPath] : [admission];
  const controlServer = controlServerOf(opts, metrics, readiness, reg ? [reg.router] : [], fastPaths, statusSource);
  const controlPort = controlServer ? await listen(controlServer, config.control.port, config.host) : 0;
  // With port 0 in the config the kernel picks the ports: only now does the URL policy know them, and a
  // backend URL pointing at switchboard itself would loop requests through the proxy.
  reg?.registry.policy.addSelfPort(controlPort);
  listening.add(controlPort);
  if (px) reg?.registry.policy.addSelfPort(px.port);
  if (px?.tlsPort) reg?.registry.policy.addSelfPort(px.tlsPort);
  logger.info({ event: 'started', roles, proxyPort: px?.port ?? null, tlsPort: px?.tlsPort ?? null, controlPort, store: store.kind }, 'switchboard started');

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ event: 'shutdown' }, 'shutting down');
      const controlClosed = new Promise<void>((r) => (controlServer ? controlServer.close(() => r()) : r()));
      controlServer?.closeIdleConnections();
      statusSource.stop();
      if (px) await px.proxy.close();
      await durability?.stop();
      await reg?.reconciler?.stop();
      await reg?.expirer.stop();
      banSweeper?.stop();
      await reg?.leadership.stop();
      await feed?.stop();
      controlServer?.closeAllConnections();
      await controlClosed;
      if (!opts.store) await store.close();
    })();
    return stopping;
  };

  return {
    config,
    store,
    metrics,
    proxyPort: px?.port ?? null,
    tlsPort: px?.tlsPort ?? null,
    controlPort,
    adminToken: reg?.adminToken ?? null,
    feed,
    registry: reg?.registry ?? null,
    expirer: reg?.expirer ?? null,
    leadership: reg?.leadership ?? null,
    healer: reg?.healer ?? null,
    reconciler: reg?.reconciler ?? null,
    durability,
    discovery: px?.discovery ?? null,
    proxy: px?.proxy ?? null,
    reloadCertificates: async () => {
      px?.proxy.tls?.reloadTicketKeys();
      await px?.proxy.certificates?.reload('SIGHUP');
    },
    stop,
  };
}
