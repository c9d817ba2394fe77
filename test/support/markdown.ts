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
