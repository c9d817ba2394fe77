// The response relay (forwarder: backend response piped to the client): complete bodies arrive whole
// on a reused connection, and a body cut or stalled by the backend ends the client's response instead
// of leaving it hanging.
import assert from 'node:assert/strict';
import http from 'node:http';
import { StaticRoutes, backend, request, startProxy, startRawBackend, tableOf, testConfig, type TestProxy } from './helpers';
import { startBackend } from '../support/backend';

/** GET that resolves with how the response ended: whole ('end') or cut ('aborted'), and what arrived. */
function fetchEnding(port: number, path: string, agent: http.Agent | false = false, deadlineMs = 5000): Promise<{ ending: 'end' | 'aborted'; status: number; body: string; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end and no abort within ${deadlineMs} ms: the client was left hanging`)), deadlineMs);
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      const done = (ending: 'end' | 'aborted') => {
        clearTimeout(timer);
        resolve({ ending, status: res.statusCode ?? 0, body, socket: req.socket });
      };
      res.on('end', () => done(res.complete ? 'end' : 'aborted'));
      res.on('error', () => done('aborted'));
      res.on('aborted', () => done('aborted'));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('proxy response relay', () => {
  const routes = new StaticRoutes();
  let p: TestProxy;

  before(async () => {
    p = await startProxy(routes, testConfig({ responseTimeoutMs: 400 }));
  });
  after(async () => {
    await p.close();
  });

  it('relays chunked bodies whole, many requests over one kept-alive client connection', async () => {
    const b = await startBackend((req, res) => {
      res.write(`a-${req.url}-`);
      setImmediate(() => {
        res.write('b-');
        res.end('c');
      });
    });
    routes.table = tableOf([backend('r', 'a', b.url)]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      for (let i = 0; i < 30; i++) {
        const r = await fetchEnding(p.port, `/r/${i}`, agent);
        assert.equal(r.ending, 'end');
        assert.equal(r.status, 200);
        assert.equal(r.body, `a-/r/${i}-b-c`);
        sockets.add(r.socket);
      }
      assert.equal(sockets.size, 1, 'every response finished cleanly, so the client connection was reused');
    } finally {
      agent.destroy();
      await b.close();
    }
  });

  it('cuts the client response when the backend dies mid-body, and keeps serving', async () => {
    const raw = await startRawBackend((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial-body');
        setTimeout(() => s.destroy(), 50);
      });
    });
    const ok = await startBackend((_req, res) => res.end('fine'));
    try {
      routes.table = tableOf([backend('cut', 'a', raw.url), backend('fine', 'a', ok.url)]);
      const r = await fetchEnding(p.port, '/cut/x');
      assert.equal(r.status, 200);
      assert.equal(r.ending, 'aborted', 'a truncated body must not look complete');
      assert.equal(r.body, 'partial-body');
      const next = await request(p.port, '/fine/x');
      assert.equal(next.status, 200);
      assert.equal(next.body, 'fine');
    } finally {
      await raw.close();
      await ok.close();
    }
  });

  it('cuts the client response when the backend goes silent mid-body for responseTimeoutMs', async () => {
    const raw = await startRawBackend((s) => {
      // Headers and a first chunk, then nothing, with the connection left open.
      s.once('data', () => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'));
    });
    try {
      routes.table = tableOf([backend('stall', 'a', raw.url)]);
      const r = await fetchEnding(p.port, '/stall/x');
      assert.equal(r.status, 200);
      assert.equal(r.ending, 'aborted');
      assert.equal(r.body, 'hello');
    } finally {
      await raw.close();
    }
  });
});
