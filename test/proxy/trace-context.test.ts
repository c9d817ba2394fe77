import assert from 'node:assert/strict';
import { forwardedElement } from '../../src/proxy/forwarded';
import { traceIdOf } from '../../src/proxy/trace-context';
import { StaticRoutes, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend, type Backend } from '../support/backend';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { waitFor } from '../support/wait';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE}-00f067aa0ba902b7-01`;

describe('W3C trace context and the Forwarded header', () => {
  it('reads a traceparent as the W3C format says: version 00 exactly, later versions with more fields, never ff or zero ids', () => {
    assert.equal(traceIdOf(PARENT), TRACE);
    assert.equal(traceIdOf(`01-${TRACE}-00f067aa0ba902b7-00-more`), TRACE);
    for (const bad of [
      `00-${TRACE}-00f067aa0ba902b7-01-more`,
      `ff-${TRACE}-00f067aa0ba902b7-01`,
      `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-00f067aa0ba902b7-1`,
      `00-${TRACE}-00f067aa0ba902b7-01x`,
      `${PARENT}, ${PARENT}`,
      '',
    ]) {
      assert.equal(traceIdOf(bad), null, bad);
    }
  });

  it('writes RFC 7239 elements: IPv6 bracketed and quoted, the host quoted, a host that cannot be quoted left out', () => {
    assert.equal(forwardedElement('192.0.2.60', 'example.com', 'https'), 'for=192.0.2.60;host="example.com";proto=https');
    assert.equal(forwardedElement('2001:db8::1', '[2001:db8::2]:8443', 'http'), 'for="[2001:db8::1]";host="[2001:db8::2]:8443";proto=http');
    assert.equal(forwardedElement('192.0.2.60', 'evil";for=1.2.3.4', 'http'), 'for=192.0.2.60;proto=http');
    assert.equal(forwardedElement('', undefined, 'http'), 'for=unknown;proto=http');
  });

  describe('through the proxy', () => {
    let echo: Backend;
    let p: TestProxy;
    let off: TestProxy;
    let logs: CapturedLogs;
    const seen = async (proxy: TestProxy, headers: Record<string, string>, path = '/echo/') =>
      (JSON.parse((await request(proxy.port, path, { headers })).body) as { headers: Record<string, string> }).headers;

    before(async () => {
      echo = await startBackend((req, res) => res.end(JSON.stringify({ headers: req.headers })));
      const routes = new StaticRoutes(tableOf([backend('echo', 'e1', echo.url)]));
      logs = capturingLogger('info');
      p = await startProxy(routes, testConfig({ accessLog: true }), { logger: logs.logger });
      off = await startProxy(routes, testConfig({ traceContext: false }));
    });
    after(async () => {
      await p.close();
      await off.close();
      await echo.close();
    });

    it('passes a well-formed traceparent and its tracestate on unchanged, with the trace id in the access line', async () => {
      const h = await seen(p, { traceparent: PARENT, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'x-request-id': 'req-1' }, '/echo/passed');
      assert.equal(h.traceparent, PARENT);
      assert.equal(h.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
      assert.equal(h['x-request-id'], 'req-1', 'X-Request-Id stays');
      const line = await waitFor('the access line', () => logs.events('access').find((l) => l.path === '/echo/passed'));
      assert.equal(line.traceId, TRACE);
      assert.equal(line.requestId, 'req-1');
    });

    it('creates a sampled traceparent when the client sent none, a new trace each time; a malformed one is replaced and its tracestate dropped', async () => {
      const a = await seen(p, {}, '/echo/created');
      const b = await seen(p, {});
      const format = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
      assert.match(a.traceparent, format);
      assert.match(b.traceparent, format);
      assert.notEqual(a.traceparent.split('-')[1], b.traceparent.split('-')[1]);
      const line = await waitFor('the access line', () => logs.events('access').find((l) => l.path === '/echo/created'));
      assert.equal(line.traceId, a.traceparent.split('-')[1]);
      const replaced = await seen(p, { traceparent: `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`, tracestate: 'rojo=1' });
      assert.match(replaced.traceparent, format);
      assert.notEqual(replaced.traceparent.split('-')[1], TRACE.toUpperCase());
      assert.equal(replaced.tracestate, undefined);
      // A Connection header cannot take the trace (or Forwarded) away from the backend.
      const listed = await seen(p, { connection: 'traceparent, forwarded' });
      assert.match(listed.traceparent, format);
      assert.match(listed.forwarded, /^for=127\.0\.0\.1;/);
    });

    it('with proxy.traceContext off, passes the headers as they are and creates nothing', async () => {
      assert.equal((await seen(off, {})).traceparent, undefined);
      const bad = await seen(off, { traceparent: 'garbage', tracestate: 'x=1' });
      assert.equal(bad.traceparent, 'garbage');
      assert.equal(bad.tracestate, 'x=1');
    });
  });
});
