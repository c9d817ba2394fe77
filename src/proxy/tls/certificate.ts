import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';

/** Where one certificate pair is read from, and the name it is logged and measured under. */
export interface PairFiles {
  name: string;
  cert: string;
  key: string;
}

/** A certificate pair read, checked and ready to serve. */
export interface Certificate {
  name: string;
  files: PairFiles;
  /** The DNS names it is valid for, lower case (`*.example.org` for a wildcard). */
  hosts: string[];
  /** When it expires, epoch ms. */
  notAfter: number;
  fingerprint: string;
  pem: { cert: Buffer; key: Buffer };
  context: tls.SecureContext;
}

/** Why a pair was not taken; its message is the log line's `reason`. */
export class RefusedPair extends Error {}

/** Both files of a pair as they are on disk now (through any symlink). */
export async function readPem(files: PairFiles): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
  return { cert, key };
}

/**
 * The DNS names of a certificate: its subjectAltName DNS entries, or its subject's CN when it has none
 * (clients no longer accept a CN alone, but the SNI match should still find it).
 */
function hostsOf(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san) {
    const dns = san.split(', ').filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).replace(/^"|"$/g, '').toLowerCase());
    if (dns.length > 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
  return cn ? [cn[1].toLowerCase()] : [];
}

function parse<T>(what: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    throw new RefusedPair(`${what}: ${(err as Error).message}`);
  }
}

/**
 * Checks a pair and makes its secure context. Refused: a certificate or key that does not parse, a key
 * that does not belong to the certificate (a renewal caught between its two writes), or a pair OpenSSL
 * will not serve.
 */
export function certificateOf(files: PairFiles, pem: { cert: Buffer; key: Buffer }): Certificate {
  const x509 = parse('the certificate is not a PEM certificate', () => new X509Certificate(pem.cert));
  const key: KeyObject = parse('the key is not a PEM private key (or is encrypted)', () => createPrivateKey(pem.key));
  if (!x509.checkPrivateKey(key)) throw new RefusedPair('the key does not match the certificate');
  const context = parse('OpenSSL refused the pair', () => tls.createSecureContext({ cert: pem.cert, key: pem.key }));
  return {
    name: files.name,
    files,
    hosts: hostsOf(x509),
    notAfter: Date.parse(x509.validTo),
    fingerprint: x509.fingerprint256,
    pem,
    context,
  };
}

/** Whether `pem` is what `c` was made from: an unchanged pair keeps its context (and logs nothing). */
export function samePem(c: Certificate, pem: { cert: Buffer; key: Buffer }): boolean {
  return c.pem.cert.equals(pem.cert) && c.pem.key.equals(pem.key);
}
