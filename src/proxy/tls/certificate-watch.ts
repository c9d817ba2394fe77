import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../../logger';

/** A renewal writes several files (certificate, key, links): one reload once they are all there. */
const SETTLE_MS = 250;
/** A directory that never stops changing still gets a reload this often. */
const MAX_WAIT_MS = 2000;

export interface DirectoryWatch {
  close(): void;
}

/**
 * Calls `changed` when the entries of `dirs` have changed and then stayed still for SETTLE_MS. The
 * directories are watched rather than the files: certbot and Kubernetes replace a certificate by renaming
 * a new file or link over the old one, after which a watch on the old file would see nothing more.
 */
export function watchDirectories(dirs: string[], changed: () => void, logger: Logger): DirectoryWatch {
  let timer: NodeJS.Timeout | null = null;
  let burstStart = 0;
  const fire = () => {
    timer = null;
    changed();
  };
  const onEvent = () => {
    const now = Date.now();
    if (timer) clearTimeout(timer);
    else burstStart = now;
    timer = setTimeout(fire, now - burstStart >= MAX_WAIT_MS ? 0 : SETTLE_MS);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    const failed = (err: Error) =>
      logger.error({ event: 'tls.watch_failed', dir, err: err.message }, 'cannot watch a certificate directory; SIGHUP still reloads');
    try {
      const w = watch(dir, { persistent: false }, onEvent);
      w.on('error', failed);
      watchers.push(w);
    } catch (err) {
      failed(err as Error);
    }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
