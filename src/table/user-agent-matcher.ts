/** Patterns tested together as one alternation, at most: one regular expression per chunk. */
const CHUNK = 64;
/** User-Agent strings whose answer is remembered, at most; then the memory starts over. */
const REMEMBERED = 4096;
/** A numbered or named back-reference: its number would change inside an alternation. */
const BACK_REFERENCE = /\\[1-9]|\\k</;

const NONE: readonly number[] = Object.freeze([]);

interface Chunk {
  /** The chunk's patterns as one alternation: a miss, nearly every request's answer, is one test. */
  any: RegExp;
  /** The patterns one by one, with their indexes: which ones matched, once `any` did. */
  each: ReadonlyArray<{ index: number; re: RegExp }>;
}

/**
 * Which of a list of User-Agent patterns match a header. The patterns were checked for catastrophic
 * backtracking when the registry accepted them; here they are combined into few alternations (a miss costs
 * one test per chunk, not per pattern), and the answer for a header is remembered: a fleet's traffic comes
 * from few distinct User-Agent strings, so most requests pay one Map lookup. A pattern that does not
 * compile (written by something else than the registry's API) is left out.
 */
export class UserAgentMatcher {
  private readonly chunks: Chunk[] = [];
  private remembered = new Map<string, readonly number[]>();
  readonly size: number;

  constructor(patterns: readonly string[]) {
    const alone: Array<{ index: number; re: RegExp }> = [];
    let batch: Array<{ index: number; re: RegExp; source: string }> = [];
    patterns.forEach((source, index) => {
      const re = compile(source);
      if (!re) return;
      if (BACK_REFERENCE.test(source)) alone.push({ index, re });
      else batch.push({ index, re, source });
      if (batch.length === CHUNK) batch = this.addChunk(batch);
    });
    if (batch.length > 0) this.addChunk(batch);
    for (const one of alone) this.chunks.push({ any: one.re, each: [one] });
    this.size = this.chunks.reduce((n, c) => n + c.each.length, 0);
  }

  /** The indexes (into the constructor's list) of the patterns that match `userAgent`, in order. */
  matches(userAgent: string): readonly number[] {
    if (this.chunks.length === 0) return NONE;
    const known = this.remembered.get(userAgent);
    if (known !== undefined) return known;
    let found: number[] | null = null;
    for (const c of this.chunks) {
      if (!c.any.test(userAgent)) continue;
      for (const p of c.each) if (p.re.test(userAgent)) (found ??= []).push(p.index);
    }
    const answer = found === null ? NONE : found.sort((a, b) => a - b);
    if (this.remembered.size >= REMEMBERED) this.remembered = new Map();
    this.remembered.set(userAgent, answer);
    return answer;
  }

  private addChunk(batch: Array<{ index: number; re: RegExp; source: string }>): [] {
    const any = batch.length === 1 ? batch[0].re : compile(batch.map((p) => `(?:${p.source})`).join('|'));
    if (any) this.chunks.push({ any, each: batch.map(({ index, re }) => ({ index, re })) });
    else for (const p of batch) this.chunks.push({ any: p.re, each: [{ index: p.index, re: p.re }] });
    return [];
  }
}

function compile(source: string): RegExp | null {
  try {
    return new RegExp(source);
  } catch {
    return null;
  }
}
