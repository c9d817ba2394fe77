import { isSafePattern } from 'redos-detector';

/** How long the check of one pattern may take: a pattern that cannot be shown safe by then is refused. */
const CHECK_MS = 250;

/** Why a User-Agent pattern is refused; null: it compiles and cannot backtrack catastrophically. */
export function unsafePattern(source: string): string | null {
  try {
    new RegExp(source);
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  let result: ReturnType<typeof isSafePattern>;
  try {
    result = isSafePattern(source, { timeout: CHECK_MS });
  } catch {
    // Syntax the checker does not know (it parses patterns itself): not shown safe, so not taken.
    return 'uses syntax the backtracking check cannot read; write it without it';
  }
  if (result.safe) return null;
  if (result.error === 'timedOut' || result.error === 'hitMaxSteps') return `is too complex to be shown safe from catastrophic backtracking within ${CHECK_MS} ms; simplify it`;
  return 'may backtrack catastrophically (exponential or polynomial time on a crafted User-Agent); avoid nested or adjacent repetitions that can match the same text, such as (a+)+, .*a.* or an unanchored [a-z]+x';
}
