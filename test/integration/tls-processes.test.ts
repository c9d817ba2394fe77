import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../proxy/helpers';
import { certDir, httpsRequest, makePair, resumingRequests, swapLink, writePair, type Pair } from '../support/certificates';
import { logEvents } from '../support/logs';
import { metricValue } from '../support/metrics';
import { startProcess, type SwitchboardProcess } from '../support/process';
import { freePort, RedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';

/**
 * Two pairs in versioned directories behind a `current` directory link, as some deployment tools lay
 * them out: swapping the link changes what the configured paths read without touching the directory
 * the proxy watches (the old version's), so only SIGHUP brings the new pair in.
 */
async function versionedPairs(): Promise<{ cert: string; key: string; first: Pair; second: Pair; swap(): void }> {
  const root = certDir();
  const first = await makePair(['edge.example.test']);
  const second = await makePair(['edge.example.test']);
  for (const [v, pair] of [['v1', first], ['v2', second]] as const) {
    mkdirSync(path.join(root, v));
    writePair(path.join(root, v), 'tls', pair);
  }
  const current = path.join(root, 'current');
  swapLink(path.join(root, 'v1'), current);
  return {
    cert: path.join(current, 'tls.crt'),
    key: path.join(current, 'tls.key'),
    first,
    second,
    swap: () => swapLink(path.join(root, 'v2'), current),
  };
}

describe('HTTPS in switchboard processes: SIGHUP, --workers', function () {
  this.timeout(90_000);
  const started: SwitchboardProcess[] = [];
  let redis: RedisServer | null = null;
  after(async () => {
    await Promise.all(started.map((p) => p.kill()));
    await redis?.stop();
  });

  it('serve with SWITCHBOARD_TLS_CERT and _KEY answers HTTPS, and SIGHUP reloads the pair without a restart', async () => {
    const pairs = await versionedPairs();
    const tlsPort = await freePort();
    const ticketKeys = path.join(certDir(), 'tickets.key');
    writeFileSync(ticketKeys, randomBytes(48));
    const p = await startProcess('serve', {
      env: { SWITCHBOARD_TLS_PORT: String(tlsPort), SWITCHBOARD_TLS_CERT: pairs.cert, SWITCHBOARD_TLS_KEY: pairs.key, SWITCHBOARD_TLS_TICKET_KEY_FILE: ticketKeys },
    });
    started.push(p);
    const ca = [pairs.first.cert, pairs.second.cert];
    const first = await httpsRequest(tlsPort, '/nosuchtool/', { servername: 'edge.example.test', ca });
    assert.equal(first.status, 404);
    assert.equal(first.fingerprint, pairs.first.fingerprint);
    // A client that keeps the session ticket resumes its TLS session on its next connections.
    const resumed = await resumingRequests(tlsPort, '/nosuchtool/', 3, { servername: 'edge.example.test', ca });
    assert.deepEqual(resumed.map((r) => r.reused), [false, true, true]);
    pairs.swap();
    writeFileSync(ticketKeys, randomBytes(48));
    p.proc.kill('SIGHUP');
    await waitFor('the session-ticket keys read again', () => logEvents(p.output(), 'tls.ticket_keys_reloaded').length === 1);
    await waitFor('the new certificate', async () => (await httpsRequest(tlsPort, '/nosuchtool/', { servername: 'edge.example.test', ca })).fingerprint === pairs.second.fingerprint);
    const reloaded = await waitFor('tls.reloaded', () => logEvents(p.output(), 'tls.reloaded').find((l) => l.trigger === 'SIGHUP'));
    assert.equal(reloaded.changed, 1);
    assert.equal(p.proc.exitCode, null, 'still running');
    // The plain port redirects to the TLS port.
    const plain = await request(p.proxyPort, '/x?y=1', { headers: { host: 'edge.example.test' } });
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://edge.example.test:${tlsPort}/x?y=1`);
  });

  it('serve --workers 2: every worker answers HTTPS, SIGHUP to the primary reloads them all, the control port reports the expiry', async () => {
    redis = await new RedisServer().start();
    const pairs = await versionedPairs();
    const tlsPort = await freePort();
    const p = await startProcess('serve', {
      env: { REDIS_URL: redis.url, SWITCHBOARD_TLS_PORT: String(tlsPort), SWITCHBOARD_TLS_CERT: pairs.cert, SWITCHBOARD_TLS_KEY: pairs.key },
      args: ['--workers', '2'],
    });
    started.push(p);
    await waitFor('workers listening', async () => (await fetch(`${p.control}/readyz`)).status === 200, 20_000);
    const ca = [pairs.first.cert, pairs.second.cert];
    const fingerprints = async (n: number) => {
      const out = new Set<string>();
      for (let i = 0; i < n; i++) out.add((await httpsRequest(tlsPort, '/nosuchtool/', { servername: 'edge.example.test', ca })).fingerprint);
      return [...out];
    };
    const workersServing = () => new Set(logEvents(p.output(), 'access').filter((l) => l.path === '/nosuchtool/').map((l) => l.pid)).size;
    // Both workers answer HTTPS (their access lines name two processes), with the first pair.
    await waitFor('both workers answering HTTPS', async () => (await fingerprints(4)).join() === pairs.first.fingerprint && workersServing() === 2, 20_000);
    pairs.swap();
    p.proc.kill('SIGHUP');
    await waitFor('every worker on the new certificate', async () => (await fingerprints(6)).join() === pairs.second.fingerprint, 15_000);
    const reloads = await waitFor('a reload in each worker', () => {
      const lines = logEvents(p.output(), 'tls.reloaded').filter((l) => l.trigger === 'SIGHUP');
      return lines.length === 2 ? lines : null;
    });
    assert.deepEqual(reloads.map((l) => l.changed), [1, 1]);
    assert.equal(logEvents(p.output(), 'worker.exit').length, 0, 'no worker died of the signal');
    // A client's TLS session resumes on whichever worker takes its next connection: they seal tickets alike.
    const resumed = await resumingRequests(tlsPort, '/nosuchtool/', 6, { servername: 'edge.example.test', ca });
    assert.deepEqual(resumed.map((r) => r.reused), [false, true, true, true, true, true]);
    const ids = new Set(resumed.slice(1).map((r) => r.requestId));
    const pids = await waitFor('the resumed requests logged', () => {
      const lines = logEvents(p.output(), 'access').filter((l) => ids.has(String(l.requestId)));
      return lines.length === ids.size ? new Set(lines.map((l) => l.pid)) : null;
    });
    assert.equal(pids.size, 2, 'resumed sessions were answered by both workers');
    const text = await (await fetch(`${p.control}/metrics`)).text();
    const left = metricValue(text, 'switchboard_tls_certificate_expiry_seconds', { name: 'default' });
    assert.ok(left > 89 * 86_400 && left <= 90 * 86_400, `expiry ${left}`);
  });
});
