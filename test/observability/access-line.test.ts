import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { AccessLog } from '../../src/proxy/access-line';
import { protoOf, refererOf, sniOf, tlsVersionOf, userAgentOf } from '../../src/proxy/access-fields';
import { startExchange, type Exchange } from '../../src/proxy/exchange';
import { capturingLogger } from '../support/logs';

/** What pino writes for the same record: the line the fixed template must equal, field for field. */
function pinoRecord(req: http.IncomingMessage, ex: Exchange, status: number, ms: number): Record<string, unknown> {
  const q = (req.url ?? '').indexOf('?');
  return {
    event: 'access',
    requestId: ex.requestId,
    traceId: ex.traceId,
    method: req.method,
    path: q < 0 ? req.url : req.url!.slice(0, q),
    proto: protoOf(req),
    status,
    bytes: req.socket.bytesWritten - ex.bytesBefore,
    ms,
    tool: ex.tool,
    backend: ex.backend,
    attempts: ex.attempts,
    outcome: ex.outcome,
    held: ex.held,
    hold: ex.hold,
    remote: req.socket.remoteAddress,
    tls: tlsVersionOf(req),
    sni: sniOf(req),
    ua: userAgentOf(req),
    referer: refererOf(req),
  };
}

/** Sends `head` as it is on a raw connection and waits for the answer's end. */
function rawRequest(port: number, head: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(head));
    s.on('error', reject);
    s.on('close', () => resolve());
    s.resume();
  });
}

describe('access log line (fixed template)', () => {
  it('is the line pino writes for the same record, whatever the client put in its path and headers', async () => {
    const logs = capturingLogger('info');
    const access = new AccessLog(logs.logger);
    const exchanges: Exchange[] = [];
    const server = http.createServer((req, res) => {
      const ex = startExchange(req, true);
      Object.assign(ex, { tool: 'to"ol\\x', backend: 'b-1', attempts: 2, outcome: 'ok', held: 12, hold: 'forwarded' });
      res.end('ok');
      res.once('close', () => {
        access.write(req, ex, 200, 1.5);
        logs.logger.info(pinoRecord(req, ex, 200, 1.5), 'request');
        exchanges.push(ex);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      await rawRequest(
        port,
        'GET /t/a"b\\c/%C3%A9?token=secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' +
          'User-Agent: ua "quoted" \\ back\ttab \u00ff\r\nReferer: https://user:pw@example.com/p?q=1#f\r\n\r\n',
      );
      await rawRequest(port, 'GET /plain HTTP/1.0\r\n\r\n');
      const lines = logs.events('access');
      assert.equal(lines.length, 4, 'two requests, each written by the template and by pino');
      for (let i = 0; i < lines.length; i += 2) {
        const [ours, pinos] = [{ ...lines[i] }, { ...lines[i + 1] }];
        assert.ok(Math.abs((ours.time as number) - (pinos.time as number)) < 60_000);
        delete ours.time;
        delete pinos.time;
        assert.deepEqual(ours, pinos);
      }
      assert.doesNotMatch(logs.raw.join('\n'), /secret|pw@/, 'no query string, no credentials of the referer');
      assert.equal(lines[0].path, '/t/a"b\\c/%C3%A9');
      // The two UTF-8 bytes of ÿ, read by Node as the latin-1 text of a header.
      assert.equal(lines[0].ua, 'ua "quoted" \\ back\ttab \u00c3\u00bf');
    } finally {
      server.close();
    }
  });

  it('writes nothing while the logger is above info', () => {
    const logs = capturingLogger('warn');
    const access = new AccessLog(logs.logger);
    const req = { method: 'GET', url: '/', httpVersion: '1.1', headers: {}, socket: { bytesWritten: 0 } } as unknown as http.IncomingMessage;
    access.write(req, startExchange(req, false), 200, 1);
    assert.equal(logs.events('access').length, 0);
  });
});
