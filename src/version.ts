import { readFileSync } from 'node:fs';
import path from 'node:path';

function readVersion(): string {
  // From src/ (tsx) the package file is one level up; from dist/src/ it is two.
  for (const rel of ['..', '../..']) {
    try {
      return (JSON.parse(readFileSync(path.join(__dirname, rel, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

/** Sent by launchers as clientVersion, so version skew in the fleet shows in a metric. */
export const VERSION = readVersion();
