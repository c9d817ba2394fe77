import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * The command-line conventions every switchboard command shares (operator commands and launchers alike):
 * strict flags, and errors that name the flag and what it wanted, in one line.
 */

/** An error main() reports as a usage error: one line, a pointer to --help, exit 2. */
export function usageError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARSE_ARGS_USAGE' });
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** What the value of each string flag is, as the usage text writes it (`tool: 'T'` for `--tool T`). */
export type ValueNames = Record<string, string>;

/**
 * node:util parseArgs answers a flag given without its value with "argument missing", or, when the next
 * word is a flag, "argument is ambiguous": neither says which value was forgotten. Checked here first.
 */
function checkValues(args: string[], options: FlagOptions, names: ValueNames): void {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return;
    const m = /^--([^=]+)$/.exec(arg);
    if (!m || options[m[1]]?.type !== 'string') continue;
    const next = args[i + 1];
    if (next === undefined || (next.startsWith('-') && next !== '-')) throw usageError(`${arg} needs a value: ${arg} ${names[m[1]] ?? 'VALUE'}`);
    i++;
  }
}

/** parseArgs's own errors, in one line: the first, naming the flag or word. */
function oneLine(err: unknown): Error {
  const e = err as Error & { code?: string };
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted) return usageError(`unknown option ${quoted}`);
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && quoted) return usageError(`unexpected argument "${quoted}"`);
  if (e.code?.startsWith('ERR_PARSE_ARGS')) return usageError(e.message.split('\n')[0]);
  return e;
}

/** node:util parseArgs (give it `strict: true`), with errors that say which flag and which value. */
export function parseFlags<T extends ParseArgsConfig & { args: string[]; options: FlagOptions }>(config: T, names: ValueNames = {}): ReturnType<typeof parseArgs<T>> {
  checkValues(config.args, config.options, names);
  try {
    return parseArgs(config);
  } catch (err) {
    throw oneLine(err);
  }
}
