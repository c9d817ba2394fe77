import type { Config } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import { CertificateStore } from '../../src/proxy/tls/certificate-store';
import { startProxy, testConfig, type StaticRoutes, type TestProxy } from './helpers';

export type TlsProxy = TestProxy & { tlsPort: number; certificates: CertificateStore; config: Config };

/**
 * A proxy on free loopback ports with its HTTPS listener: `tls` is merged into proxy.tls (port 0),
 * `proxy` into the rest of the proxy's settings (testConfig's short timeouts), `top` into the config's top level.
 */
export async function startTlsProxy(
  routes: StaticRoutes,
  tls: Record<string, unknown>,
  opts: { proxy?: Record<string, unknown>; top?: Record<string, unknown>; logger?: Logger } = {},
): Promise<TlsProxy> {
  const config = testConfig({ ...opts.proxy, tls: { port: 0, ...tls } }, opts.top);
  const logger = opts.logger ?? silentLogger();
  const certificates = await CertificateStore.open(config.proxy.tls, logger);
  const p = await startProxy(routes, config, { logger, certificates });
  const tlsPort = await p.proxy.listenTls(0, '127.0.0.1');
  return Object.assign(p, { tlsPort, certificates, config });
}
