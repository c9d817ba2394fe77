import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';

export const ACME_PREFIX = '/.well-known/acme-challenge/';

/** ACME tokens are base64url (RFC 8555 8.3): nothing else names a file, so no path can leave the directory. */
const TOKEN = /^[A-Za-z0-9_-]{1,255}$/;
/** A challenge file is a token and a key thumbprint, under 200 bytes; anything much larger is not one. */
const MAX_BYTES = 8 * 1024;

/** Whether a request target is an ACME http-01 challenge (whatever the token). */
export function isAcmeChallenge(url: string | undefined): boolean {
  return url !== undefined && url.startsWith(ACME_PREFIX);
}

/** The token a challenge URL names, or null when it is not a token (a query string is not part of it). */
function tokenOf(url: string): string | null {
  const q = url.indexOf('?');
  const token = url.slice(ACME_PREFIX.length, q < 0 ? undefined : q);
  return TOKEN.test(token) ? token : null;
}

/** The challenge file's content, or null: no such token, or not a plain file of a challenge's size. */
async function readChallenge(webroot: string, token: string): Promise<Buffer | null> {
  let file;
  try {
    // O_NOFOLLOW: the file must be one certbot wrote there, not a link to elsewhere on the host.
    file = await open(path.join(webroot, '.well-known', 'acme-challenge', token), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = await file.stat();
    if (!st.isFile() || st.size > MAX_BYTES) return null;
    return await file.readFile();
  } finally {
    await file.close();
  }
}

/**
 * Answers an ACME http-01 challenge from the directory certbot's webroot mode writes to
 * (`<webroot>/.well-known/acme-challenge/<token>`): 200 with the file, 404 for anything else, 405 for a
 * method other than GET or HEAD. Answers the status sent.
 */
export async function serveChallenge(webroot: string, req: http.IncomingMessage, res: http.ServerResponse, requestId: string): Promise<number> {
  const head = { 'cache-control': 'no-store', 'x-request-id': requestId };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...head, allow: 'GET, HEAD', 'content-length': '0' });
    res.end();
    return 405;
  }
  const token = tokenOf(req.url ?? '');
  const body = token === null ? null : await readChallenge(webroot, token);
  if (res.destroyed) return 499;
  const status = body ? 200 : 404;
  const content = body ?? Buffer.from('no such challenge\n');
  res.writeHead(status, { ...head, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(content.length) });
  res.end(req.method === 'HEAD' ? undefined : content);
  return status;
}
