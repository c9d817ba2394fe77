import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config';
import type { PairFiles } from './certificate';

export type TlsSettings = Config['proxy']['tls'];

/** The name of the proxy.tls.cert/key pair (a certDir pair is named after its files). */
export const DEFAULT_NAME = 'default';

/** The pairs the settings name right now, and the names of certDir files without their other half. */
export interface PairListing {
  pairs: PairFiles[];
  incomplete: Array<{ name: string; reason: string }>;
  /** certDir could not be read: its pairs are not listed (the ones being served are kept). */
  dirError: string | null;
}

/**
 * The cert/key pair, then certDir's `<name>.crt`/`<name>.key` pairs in name order. Dot files are passed
 * over: a Kubernetes secret volume keeps its versions in `..data` directories beside the links.
 */
export async function listPairs(s: TlsSettings): Promise<PairListing> {
  const out: PairListing = { pairs: [], incomplete: [], dirError: null };
  if (s.cert !== null && s.key !== null) out.pairs.push({ name: DEFAULT_NAME, cert: s.cert, key: s.key });
  if (s.certDir === null) return out;
  let entries: string[];
  try {
    entries = await readdir(s.certDir);
  } catch (err) {
    out.dirError = (err as Error).message;
    return out;
  }
  const files = new Set(entries.filter((e) => !e.startsWith('.')));
  const names = [...new Set([...files].filter((f) => f.endsWith('.crt') || f.endsWith('.key')).map((f) => f.slice(0, -4)))].sort();
  for (const name of names) {
    const [crt, key] = [`${name}.crt`, `${name}.key`];
    if (!files.has(crt) || !files.has(key)) {
      out.incomplete.push({ name, reason: `${files.has(crt) ? key : crt} is missing` });
    } else if (name === DEFAULT_NAME && out.pairs.length > 0) {
      out.incomplete.push({ name, reason: 'the name "default" is the proxy.tls.cert pair\'s' });
    } else {
      out.pairs.push({ name, cert: path.join(s.certDir, crt), key: path.join(s.certDir, key) });
    }
  }
  return out;
}

/** The directories whose entries change when a certificate is renewed: where each configured path lives. */
export function watchedDirectories(s: TlsSettings): string[] {
  const dirs = [s.cert, s.key].filter((f): f is string => f !== null).map((f) => path.dirname(f));
  if (s.certDir !== null) dirs.push(s.certDir);
  return [...new Set(dirs)];
}
