/** The cells of a markdown table row; a `|` inside backticks is part of its cell. */
export function tableCells(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let code = false;
  for (const ch of line.trim().replace(/^\||\|$/g, '')) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** The body rows (as cells) of every table whose header row `isHeader` accepts. */
export function tableRows(markdown: string, isHeader: (cells: string[]) => boolean): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const c = tableCells(line);
    if (isHeader(c)) {
      inTable = true;
      continue;
    }
    if (inTable && !/^-+$/.test(c[0])) rows.push(c);
  }
  return rows;
}

/** A fenced code block: its info string's first word (`sh`, `text`, or '') and its lines joined. */
export interface FencedBlock {
  lang: string;
  body: string;
}

/** The fenced (```) blocks of a markdown text, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  let open: { lang: string; lines: string[] } | null = null;
  for (const line of markdown.split('\n')) {
    if (open === null) {
      const m = /^```\s*(\S*)/.exec(line);
      if (m) open = { lang: m[1], lines: [] };
    } else if (/^```\s*$/.test(line)) {
      blocks.push({ lang: open.lang, body: open.lines.join('\n') });
      open = null;
    } else open.lines.push(line);
  }
  return blocks;
}

/** The text between `<!-- name:begin -->` and `<!-- name:end -->`, which must be there once each. */
export function markedSection(markdown: string, name: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const from = markdown.indexOf(begin);
  const to = markdown.indexOf(end);
  if (from < 0 || to < from || markdown.indexOf(begin, from + 1) >= 0) throw new Error(`expected one ${begin} … ${end} section`);
  return markdown.slice(from + begin.length, to);
}

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces as hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a markdown text offers: its headings' (a repeated one gets -1, -2 …) and `<a id="…">` tags. */
export function anchorsOf(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const slug = headingSlug(heading[1]);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  for (const m of markdown.matchAll(/<a id="([^"]+)"/g)) out.add(m[1]);
  return out;
}
