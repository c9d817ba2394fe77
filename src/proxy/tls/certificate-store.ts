import { EventEmitter } from 'node:events';
import type tls from 'node:tls';
import { ConfigError } from '../../config/errors';
import type { Logger } from '../../logger';
import { certificateOf, readPem, samePem, type Certificate, type PairFiles } from './certificate';
import { DEFAULT_NAME, listPairs, watchedDirectories, type TlsSettings } from './certificate-files';
import { watchDirectories, type DirectoryWatch } from './certificate-watch';

/** What started a reload: the first load, a change in a watched directory, or SIGHUP. */
export type ReloadTrigger = 'start' | 'change' | 'SIGHUP';

/** What one reload did. */
export interface ReloadOutcome {
  /** Pairs loaded anew or removed. */
  changed: number;
  /** Pairs refused (the one served before under their name, if any, is kept). */
  refused: number;
}

/** The certificate that serves each DNS name: an exact name, or a `*.<domain>` for one label more. */
interface HostIndex {
  exact: Map<string, Certificate>;
  wildcard: Map<string, Certificate>;
}

/** Of two certificates claiming one name, the one that expires last: the renewed one. */
function claim(map: Map<string, Certificate>, name: string, c: Certificate): void {
  const had = map.get(name);
  if (!had || c.notAfter > had.notAfter) map.set(name, c);
}

function indexOf(certificates: Iterable<Certificate>): HostIndex {
  const index: HostIndex = { exact: new Map(), wildcard: new Map() };
  for (const c of certificates) {
    for (const h of c.hosts) {
      if (h.startsWith('*.')) claim(index.wildcard, h.slice(2), c);
      else claim(index.exact, h, c);
    }
  }
  return index;
}

/**
 * The certificates the HTTPS port serves, by name, and the one for each SNI host name. A reload reads
 * every pair again and swaps in the ones that changed; a pair that does not load is refused with a log
 * line and the certificate served under its name before stays. Handshakes under way keep the context
 * they started with, so no connection is dropped.
 *
 * Emits 'default' (the certificate) when the one served without SNI, or for an unknown name, changes.
 */
export class CertificateStore extends EventEmitter {
  private byName = new Map<string, Certificate>();
  private index: HostIndex = { exact: new Map(), wildcard: new Map() };
  private fallback: Certificate | null = null;
  private running: Promise<ReloadOutcome> | null = null;
  private again: Promise<ReloadOutcome> | null = null;
  private watcher: DirectoryWatch | null = null;

  private constructor(
    private readonly settings: TlsSettings,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** The store with every pair loaded; refuses to start with none (HTTPS on, nothing to serve). */
  static async open(settings: TlsSettings, logger: Logger): Promise<CertificateStore> {
    const store = new CertificateStore(settings, logger);
    await store.reload('start');
    if (!store.fallback) throw new ConfigError('proxy.tls: no certificate could be loaded (the tls.certificate_refused lines say why)');
    return store;
  }

  /** The certificate served without SNI or for a name no certificate holds. */
  get defaultCertificate(): Certificate {
    return this.fallback as Certificate;
  }

  /** The context for an SNI host name; undefined: the default one. */
  contextFor(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.index.exact.get(name);
    if (exact) return exact.context;
    const dot = name.indexOf('.');
    return dot > 0 ? this.index.wildcard.get(name.slice(dot + 1))?.context : undefined;
  }

  /** Every certificate served, by name, with its expiry (epoch ms). */
  expiries(): Array<{ name: string; notAfter: number }> {
    return [...this.byName.values()].map((c) => ({ name: c.name, notAfter: c.notAfter }));
  }

  /** From now on, a change in the directories of the configured files reloads (once it has settled). */
  watch(): void {
    this.watcher ??= watchDirectories(
      watchedDirectories(this.settings),
      () => void this.reload('change').catch((err: Error) => this.logger.error({ event: 'tls.reload_failed', err: err.message }, 'certificate reload failed')),
      this.logger,
    );
  }

  /** Stops watching. */
  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  /** Reads every pair again. Reloads never overlap: one asked for while one runs starts after it. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    if (!this.running) {
      this.running = this.load(trigger).finally(() => (this.running = null));
      return this.running;
    }
    this.again ??= this.running.then(() => {
      this.again = null;
      return this.reload(trigger);
    });
    return this.again;
  }

  private async load(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const listing = await listPairs(this.settings);
    const next = new Map<string, Certificate>();
    const outcome: ReloadOutcome = { changed: 0, refused: 0 };
    for (const files of listing.pairs) {
      const c = await this.loadPair(files, outcome);
      if (c) next.set(files.name, c);
    }
    for (const { name, reason } of listing.incomplete) {
      const kept = this.refuse(name, reason, outcome);
      if (kept) next.set(name, kept);
    }
    if (listing.dirError !== null) {
      this.logger.error({ event: 'tls.certificate_dir_unreadable', dir: this.settings.certDir, err: listing.dirError }, 'certificate directory unreadable; its certificates stay');
      for (const [name, c] of this.byName) if (name !== DEFAULT_NAME && !next.has(name)) next.set(name, c);
    }
    for (const name of this.byName.keys()) {
      if (next.has(name)) continue;
      outcome.changed++;
      this.logger.info({ event: 'tls.certificate_removed', name }, 'certificate removed');
    }
    this.swap(next);
    if (trigger === 'SIGHUP' || outcome.changed > 0 || outcome.refused > 0) {
      this.logger.info({ event: 'tls.reloaded', trigger, certificates: next.size, ...outcome }, 'certificates reloaded');
    }
    return outcome;
  }

  /** One pair: the one served already when its files are unchanged, a new one, or the old one kept when refused. */
  private async loadPair(files: PairFiles, outcome: ReloadOutcome): Promise<Certificate | undefined> {
    const old = this.byName.get(files.name);
    try {
      const pem = await readPem(files);
      if (old && samePem(old, pem)) return old;
      const c = certificateOf(files, pem);
      outcome.changed++;
      this.logger.info(
        { event: 'tls.certificate_loaded', name: c.name, hosts: c.hosts, notAfter: new Date(c.notAfter).toISOString(), fingerprint: c.fingerprint },
        'certificate loaded',
      );
      return c;
    } catch (err) {
      return this.refuse(files.name, (err as Error).message, outcome, files);
    }
  }

  /** A pair refused: logged; answers the certificate served under its name so far, which goes on. */
  private refuse(name: string, reason: string, outcome: ReloadOutcome, files?: PairFiles): Certificate | undefined {
    outcome.refused++;
    const old = this.byName.get(name);
    this.logger.error(
      { event: 'tls.certificate_refused', name, cert: files?.cert, key: files?.key, reason, kept: old ? old.fingerprint : null },
      old ? 'certificate refused; the one served before stays' : 'certificate refused',
    );
    return old;
  }

  private swap(next: Map<string, Certificate>): void {
    this.byName = next;
    this.index = indexOf(next.values());
    const fallback = next.get(DEFAULT_NAME) ?? next.values().next().value ?? null;
    if (fallback === this.fallback) return;
    this.fallback = fallback;
    if (fallback) this.emit('default', fallback);
  }
}
