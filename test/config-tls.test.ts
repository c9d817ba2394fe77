import assert from 'node:assert/strict';
import { loadConfig, tlsEnabled } from '../src/config';
import { writeConfig } from './support/process';

describe('configuration of HTTPS (proxy.tls) and trace context', () => {
  it('is off until a certificate is configured: port 8443, redirects on, HSTS off, trace context on', () => {
    const c = loadConfig({ env: {} });
    assert.equal(tlsEnabled(c), false);
    assert.deepEqual(c.proxy.tls, {
      port: 8443,
      cert: null,
      key: null,
      certDir: null,
      redirectHttp: true,
      redirectPort: 0,
      hsts: false,
      hstsMaxAgeSeconds: 31_536_000,
      acmeWebroot: null,
      ticketKeyFile: null,
      http2: {
        enabled: true,
        maxConcurrentStreams: 100,
        maxHeaderListBytes: 16_384,
        initialWindowBytes: 65_535,
        maxSessionMemoryMb: 10,
        maxResetsPerSecond: 100,
        maxControlFramesPerSecond: 500,
        maxInvalidFrames: 100,
        maxRejectedStreams: 100,
      },
    });
    assert.equal(c.proxy.traceContext, true);
  });

  it('turns on with SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY, or a certificate directory (SWITCHBOARD_TLS_CERT_DIR)', () => {
    const pair = loadConfig({ env: { SWITCHBOARD_TLS_CERT: '/etc/tls/a.crt', SWITCHBOARD_TLS_KEY: '/etc/tls/a.key', SWITCHBOARD_TLS_PORT: '443' } });
    assert.equal(tlsEnabled(pair), true);
    assert.equal(pair.proxy.tls.port, 443);
    assert.equal(pair.proxy.tls.cert, '/etc/tls/a.crt');
    const dir = loadConfig({ env: { SWITCHBOARD_TLS_CERT_DIR: '/etc/tls' } });
    assert.equal(tlsEnabled(dir), true);
    assert.equal(loadConfig({ env: {}, file: writeConfig({ proxy: { tls: { certDir: '/etc/tls', hsts: true, hstsMaxAgeSeconds: 600 } } }) }).proxy.tls.hstsMaxAgeSeconds, 600);
  });

  it('refuses half a pair, relative paths, a port taken by another listener and a max-age past two years', () => {
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_CERT: '/etc/tls/a.crt' } }), /proxy\.tls\.key: is required with proxy\.tls\.cert/);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_KEY: '/etc/tls/a.key' } }), /proxy\.tls\.cert: is required with proxy\.tls\.key/);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_CERT: 'a.crt', SWITCHBOARD_TLS_KEY: '/a.key' } }), /SWITCHBOARD_TLS_CERT \(proxy\.tls\.cert\): must be null or an absolute file path, got "a\.crt"/);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_CERT_DIR: '/etc/tls', SWITCHBOARD_TLS_PORT: '8080' } }), /SWITCHBOARD_TLS_PORT \(proxy\.tls\.port\): must differ from proxy\.port/);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_CERT_DIR: '/etc/tls', SWITCHBOARD_TLS_PORT: '8282' } }), /must differ from control\.port/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { tls: { hstsMaxAgeSeconds: 63_072_001 } } }) }), /proxy\.tls\.hstsMaxAgeSeconds: must be an integer in 0\.\.63072000/);
    assert.throws(() => loadConfig({ env: {}, file: writeConfig({ proxy: { tls: { http2: { maxConcurrentStreams: 0 } } } }) }), /proxy\.tls\.http2\.maxConcurrentStreams: must be an integer in 1\.\.1000/);
    assert.throws(() => loadConfig({ env: { SWITCHBOARD_TLS_HTTP2_MAX_RESETS_PER_SECOND: '0' } }), /SWITCHBOARD_TLS_HTTP2_MAX_RESETS_PER_SECOND \(proxy\.tls\.http2\.maxResetsPerSecond\): must be an integer in 1\.\.100000/);
    assert.equal(loadConfig({ env: { SWITCHBOARD_TLS_HTTP2: 'false' } }).proxy.tls.http2.enabled, false);
    // The same port is no clash while HTTPS is off.
    assert.equal(loadConfig({ env: { SWITCHBOARD_TLS_PORT: '8080' } }).proxy.tls.port, 8080);
  });
});
