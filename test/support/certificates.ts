import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, PEM, as a test writes them where the proxy reads them. */
export interface Pair {
  cert: string;
  key: string;
  /** Its SHA-256 fingerprint as Node prints it (AA:BB:...): what a client saw tells which pair served it. */
  fingerprint: string;
}

/** A fresh directory for a test's certificate files. */
export function certDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sb-tls-'));
}

/**
 * A self-signed certificate (P-256) for `names` (subjectAltName DNS entries, wildcards allowed), valid
 * for `days`, made by the openssl CLI. Self-signed: a client trusts it by passing it as its CA.
 */
export async function makePair(names: string[], days = 90): Promise<Pair> {
  const dir = certDir();
  const [cert, key] = [path.join(dir, 'c.pem'), path.join(dir, 'k.pem')];
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(days),
    '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
  ], { timeout: 10_000 });
  const pem = readFileSync(cert, 'utf8');
  return { cert: pem, key: readFileSync(key, 'utf8'), fingerprint: new X509Certificate(pem).fingerprint256 };
}

/**
 * Writes a pair as `<dir>/<name>.crt` and `<name>.key` the way renewal tools do: each file written beside
 * and renamed over the old one, so a reader never sees half a file.
 */
export function writePair(dir: string, name: string, pair: { cert: string; key: string }): { cert: string; key: string } {
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  for (const [file, text] of [[files.cert, pair.cert], [files.key, pair.key]]) {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  }
  return files;
}

/** Points `link` at `target` as certbot's live/ links are swapped: a new link renamed over the old one. */
export function swapLink(target: string, link: string): void {
  const tmp = `${link}.new`;
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

export interface TlsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The fingerprint of the certificate the server presented. */
  fingerprint: string;
  /** The TLS version negotiated. */
  protocol: string | null;
}

/**
 * One HTTPS request with Node's client on a fresh connection to 127.0.0.1, sending `servername` as SNI
 * (none when null) and trusting only `ca`.
 */
export function httpsRequest(
  port: number,
  urlPath: string,
  opts: { servername: string | null; ca: string | string[]; host?: string; method?: string; headers?: Record<string, string> },
): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: opts.method ?? 'GET',
        // An empty servername sends no SNI.
        servername: opts.servername ?? '',
        ca: opts.ca,
        headers: { host: opts.host ?? opts.servername ?? '127.0.0.1', ...opts.headers },
        agent: false,
        // The certificate names the SNI host; a test without SNI checks which pair answered by fingerprint.
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const socket = res.socket as import('node:tls').TLSSocket;
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        const protocol = socket.getProtocol();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), fingerprint, protocol }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs curl over HTTP/1.1 (or HTTP/2: `http` '2') with `args`; answers its stdout (curl fails the promise on a non-zero exit). */
export async function curl(args: string[], http: '1.1' | '2' = '1.1'): Promise<string> {
  const { stdout } = await run('curl', [`--http${http}`, '--silent', '--show-error', '--max-time', '10', ...args], { timeout: 15_000 });
  return stdout;
}

/**
 * `n` requests, each on a new connection, through one agent that keeps the TLS session the server's ticket
 * gives it (as a browser does): for each, whether its handshake resumed the session, and the server's
 * X-Request-Id (for the access line that says which process answered).
 */
export async function resumingRequests(port: number, urlPath: string, n: number, opts: { servername: string; ca: string | string[] }): Promise<Array<{ reused: boolean; requestId: string }>> {
  // keepAlive off: every request its own connection, each a handshake that may resume the cached session.
  const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
  const out: Array<{ reused: boolean; requestId: string }> = [];
  try {
    for (let i = 0; i < n; i++) {
      out.push(
        await new Promise((resolve, reject) => {
          const req = https.get({ host: '127.0.0.1', port, path: urlPath, servername: opts.servername, ca: opts.ca, headers: { host: opts.servername }, agent }, (res) => {
            const reused = (res.socket as import('node:tls').TLSSocket).isSessionReused();
            res.resume();
            res.on('end', () => resolve({ reused, requestId: String(res.headers['x-request-id'] ?? '') }));
            res.on('error', reject);
          });
          req.on('error', reject);
        }),
      );
      // TLS 1.3 tickets come after the handshake: the next connection starts once this one has closed.
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    agent.destroy();
  }
  return out;
}

/** The TLS session a server's ticket gives a client on a new connection to `port` (what it would resume with). */
export function tlsSession(port: number, opts: { servername: string; ca: string | string[] }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: opts.servername, ca: opts.ca, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no session ticket from port ${port} within 5 s`));
    }, 5000);
    // TLS 1.3 tickets come just after the handshake, each a 'session' event: the first will do.
    s.once('session', (session: Buffer) => {
      clearTimeout(timer);
      s.end();
      resolve(session);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Whether a new connection to `port` offering `session` resumed it (no full handshake). */
export function resumes(port: number, session: Buffer, opts: { servername: string; ca: string | string[] }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: opts.servername, ca: opts.ca, session, ALPNProtocols: ['http/1.1'] }, () => {
      const reused = s.isSessionReused();
      s.end();
      resolve(reused);
    });
    s.on('error', reject);
  });
}
