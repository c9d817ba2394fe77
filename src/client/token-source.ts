import { readFileSync } from 'node:fs';
import { usageError } from './flags';

/** The flags a command takes its token from. */
export interface TokenFlags {
  token?: string;
  'token-file'?: string;
}

/**
 * A token file: the token alone, surrounding whitespace (the final newline of `echo TOKEN > file`)
 * ignored. A token on the command line shows in `ps` to every user of the host; a file (mode 600, or a
 * systemd credential) does not.
 */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`--token-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const token = text.trim();
  if (!token) throw usageError(`--token-file: ${file} is empty`);
  if (/\s/.test(token)) throw usageError(`--token-file: ${file} must hold the token alone, on one line`);
  return token;
}

/** The token a command sends: --token, or the one in --token-file, else the environment's (`fromEnv`). */
export function tokenFrom(flags: TokenFlags, fromEnv: string | undefined): string | undefined {
  if (flags.token !== undefined && flags['token-file'] !== undefined) throw usageError('--token and --token-file: give one of them');
  if (flags['token-file'] !== undefined) return readTokenFile(flags['token-file']);
  return flags.token ?? fromEnv;
}
