import assert from 'node:assert/strict';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { StaticRoutes, backend, tableOf } from './helpers';
import { startTlsProxy, type TlsProxy } from './tls-helpers';
import { certDir, httpsRequest, makePair, swapLink, writePair, type Pair } from '../support/certificates';
import { startBackend, type Backend } from '../support/backend';
import { capturingLogger, type CapturedLogs } from '../support/logs';
import { waitFor } from '../support/wait';

/** The fingerprint a new connection is served for `servername`, once it is `want`. */
function servedBecomes(p: TlsProxy, servername: string, ca: string[], want: string): Promise<true> {
  return waitFor(`the certificate ${want.slice(0, 11)} for ${servername}`, async () => (await httpsRequest(p.tlsPort, '/slow/quick', { servername, ca })).fingerprint === want);
}

describe('proxy HTTPS certificate reloads', function () {
  this.timeout(30_000);
  let slow: Backend;
  /** Releases the long responses the backend holds open. */
  const release: Array<() => void> = [];
  const routes = () => new StaticRoutes(tableOf([backend('slow', 's1', slow.url)]));

  before(async () => {
    slow = await startBackend((req, res) => {
      if (req.url === '/slow/quick') return res.end('quick');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half;');
      release.push(() => res.end('second half'));
    });
  });
  after(async () => {
    for (const r of release) r();
    await slow.close();
  });

  describe('certDir pairs written over', () => {
    let dir: string;
    let logs: CapturedLogs;
    let p: TlsProxy;
    let old: Pair;
    let renewed: Pair;
    let ca: string[];

    before(async () => {
      dir = certDir();
      old = await makePair(['site.example.test']);
      renewed = await makePair(['site.example.test']);
      ca = [old.cert, renewed.cert];
      writePair(dir, 'site', old);
      logs = capturingLogger('info');
      p = await startTlsProxy(routes(), { certDir: dir }, { logger: logs.logger });
      p.certificates.watch();
    });
    after(() => p.close());

    it('swaps in a renewed pair while a long request is open: the request finishes, new connections get the new certificate', async () => {
      const held = release.length;
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'site.example.test' });
      try {
        const long = new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
          https
            .get({ host: '127.0.0.1', port: p.tlsPort, path: '/slow/long', agent, headers: { host: 'site.example.test' } }, (res: http.IncomingMessage) => {
              const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
              res.on('error', reject);
            })
            .on('error', reject);
        });
        await waitFor('the backend to hold the request', () => release.length > held);
        writePair(dir, 'site', renewed);
        await servedBecomes(p, 'site.example.test', ca, renewed.fingerprint);
        release[held]();
        const r = await long;
        assert.equal(r.status, 200);
        assert.equal(r.body, 'first half;second half');
        assert.equal(r.fingerprint, old.fingerprint, 'the open connection kept the certificate it shook hands with');
        // The same keep-alive connection serves its next request too.
        const next = await new Promise<string>((resolve, reject) => {
          https.get({ host: '127.0.0.1', port: p.tlsPort, path: '/slow/quick', agent, headers: { host: 'site.example.test' } }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(body));
          }).on('error', reject);
        });
        assert.equal(next, 'quick');
      } finally {
        agent.destroy();
      }
      const loaded = logs.events('tls.certificate_loaded').filter((l) => l.name === 'site');
      assert.deepEqual(loaded.map((l) => l.fingerprint), [old.fingerprint, renewed.fingerprint]);
    });

    it('refuses a certificate whose key does not match (tls.certificate_refused) and keeps serving the old one', async () => {
      const other = await makePair(['site.example.test']);
      // A renewal caught half way: the new certificate beside the old key.
      writePair(dir, 'site', { cert: other.cert, key: renewed.key });
      const refused = await waitFor('tls.certificate_refused', () => logs.events('tls.certificate_refused').find((l) => l.name === 'site'));
      assert.equal(refused.reason, 'the key does not match the certificate');
      assert.equal(refused.kept, renewed.fingerprint);
      assert.equal(refused.cert, path.join(dir, 'site.crt'));
      for (let i = 0; i < 3; i++) assert.equal((await httpsRequest(p.tlsPort, '/slow/quick', { servername: 'site.example.test', ca })).fingerprint, renewed.fingerprint);
      // A key that is not a key is refused the same way.
      writeFileSync(path.join(dir, 'site.key'), 'not a key\n');
      await waitFor('a second refusal', () => logs.events('tls.certificate_refused').filter((l) => l.name === 'site').length >= 2);
      assert.match(String(logs.events('tls.certificate_refused').at(-1)!.reason), /not a PEM private key/);
      assert.equal((await httpsRequest(p.tlsPort, '/slow/quick', { servername: 'site.example.test', ca })).fingerprint, renewed.fingerprint);
      // Once the matching key is there, the new pair serves.
      ca.push(other.cert);
      writePair(dir, 'site', other);
      await servedBecomes(p, 'site.example.test', ca, other.fingerprint);
    });

    it('serves a pair added to certDir by its SNI name, and stops serving one removed', async () => {
      const added = await makePair(['new.example.test']);
      ca.push(added.cert);
      const files = writePair(dir, 'new', added);
      await servedBecomes(p, 'new.example.test', ca, added.fingerprint);
      unlinkSync(files.cert);
      unlinkSync(files.key);
      await waitFor('tls.certificate_removed', () => logs.events('tls.certificate_removed').find((l) => l.name === 'new'));
      assert.notEqual((await httpsRequest(p.tlsPort, '/slow/quick', { servername: 'new.example.test', ca })).fingerprint, added.fingerprint);
    });
  });

  it("follows certbot's live/ links when they are swapped to a renewed pair (proxy.tls.cert and key)", async () => {
    const root = certDir();
    const [archive, live] = [path.join(root, 'archive'), path.join(root, 'live')];
    mkdirSync(archive);
    mkdirSync(live);
    const first = await makePair(['bot.example.test']);
    const second = await makePair(['bot.example.test']);
    const v1 = writePair(archive, 'v1', first);
    const v2 = writePair(archive, 'v2', second);
    swapLink(v1.cert, path.join(live, 'fullchain.pem'));
    swapLink(v1.key, path.join(live, 'privkey.pem'));
    const p = await startTlsProxy(routes(), { cert: path.join(live, 'fullchain.pem'), key: path.join(live, 'privkey.pem') });
    try {
      p.certificates.watch();
      const ca = [first.cert, second.cert];
      assert.equal((await httpsRequest(p.tlsPort, '/slow/quick', { servername: null, ca })).fingerprint, first.fingerprint);
      swapLink(v2.cert, path.join(live, 'fullchain.pem'));
      swapLink(v2.key, path.join(live, 'privkey.pem'));
      await servedBecomes(p, 'bot.example.test', ca, second.fingerprint);
      // Without SNI too: the default certificate is the server's own context.
      assert.equal((await httpsRequest(p.tlsPort, '/slow/quick', { servername: null, ca })).fingerprint, second.fingerprint);
    } finally {
      await p.close();
    }
  });

  it('refuses to start when no configured pair loads', async () => {
    const dir = certDir();
    const a = await makePair(['a.example.test']);
    const b = await makePair(['b.example.test']);
    writePair(dir, 'site', { cert: a.cert, key: b.key });
    await assert.rejects(startTlsProxy(routes(), { certDir: dir }), /proxy\.tls: no certificate could be loaded/);
  });
});
