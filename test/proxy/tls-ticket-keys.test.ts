import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/config/errors';
import { StaticRoutes, tableOf } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, makePair, resumes, tlsSession, writePair, type Pair } from '../support/certificates';
import { capturingLogger } from '../support/logs';

const NAME = 'edge.example.test';

describe('proxy HTTPS session-ticket keys (proxy.tls.ticketKeyFile)', function () {
  this.timeout(30_000);
  let dir: string;
  let pair: Pair;
  let files: { cert: string; key: string };
  const proxies: TlsProxy[] = [];
  const opts = () => ({ servername: NAME, ca: pair.cert });
  const keyFile = (name: string, bytes: Buffer) => {
    const file = path.join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const start = async (tls: Record<string, unknown>, logger = capturingLogger().logger) => {
    const p = await startTlsProxy(new StaticRoutes(tableOf([])), { ...files, ...tls }, { logger });
    proxies.push(p);
    return p;
  };

  before(async () => {
    dir = certDir();
    pair = await makePair([NAME]);
    files = writePair(dir, 'edge', pair);
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
  });

  it('proxies reading the same file resume each other\'s sessions; a proxy with its own keys does not', async () => {
    const shared = keyFile('shared.key', randomBytes(48));
    const [a, b, own] = [await start({ ticketKeyFile: shared }), await start({ ticketKeyFile: shared }), await start({})];
    const session = await tlsSession(a.tlsPort, opts());
    assert.equal(await resumes(a.tlsPort, session, opts()), true, 'on the proxy that sealed it');
    assert.equal(await resumes(b.tlsPort, session, opts()), true, 'on another proxy with the same file');
    assert.equal(await resumes(own.tlsPort, session, opts()), false, 'not on a proxy with keys of its own');
  });

  it('a file that is not 48 bytes, or cannot be read, stops the start with an error naming the setting and the size', async () => {
    for (const [file, words] of [
      [keyFile('short.key', randomBytes(32)), /proxy\.tls\.ticketKeyFile: must hold exactly 48 bytes .*got 32/],
      [keyFile('long.key', randomBytes(80)), /must hold exactly 48 bytes .*got 80/],
      [path.join(dir, 'missing.key'), /proxy\.tls\.ticketKeyFile: cannot read .*ENOENT/],
    ] as const) {
      await assert.rejects(start({ ticketKeyFile: file }), (err: Error) => err instanceof ConfigError && words.test(err.message), String(file));
    }
  });

  it('reading the file again (what SIGHUP does): new keys seal new sessions (older ones get a full handshake); a bad file is logged and the keys in use stay', async () => {
    const file = keyFile('rotated.key', randomBytes(48));
    const logs = capturingLogger();
    const p = await start({ ticketKeyFile: file }, logs.logger);
    const before = await tlsSession(p.tlsPort, opts());
    writeFileSync(file, randomBytes(48));
    p.proxy.tls!.reloadTicketKeys();
    assert.equal(logs.events('tls.ticket_keys_reloaded').length, 1);
    assert.equal(await resumes(p.tlsPort, before, opts()), false, 'a session sealed with the old keys');
    const after = await tlsSession(p.tlsPort, opts());
    assert.equal(await resumes(p.tlsPort, after, opts()), true);
    writeFileSync(file, 'not 48 bytes');
    p.proxy.tls!.reloadTicketKeys();
    const refused = logs.events('tls.ticket_keys_refused');
    assert.equal(refused.length, 1);
    assert.match(String(refused[0].err), /must hold exactly 48 bytes/);
    assert.equal(await resumes(p.tlsPort, after, opts()), true, 'the keys in use stayed');
  });
});
