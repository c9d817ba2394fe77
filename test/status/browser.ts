import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

/** Debian's chromium: CI installs it (.ci/run); nothing is ever downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
}

/** The tbody of one tool: its name is the row header of the group. */
export function toolGroup(page: Page, tool: string): Locator {
  return page.locator('tbody').filter({ has: page.locator('th', { hasText: new RegExp(`^${tool}$`) }) });
}

/** The visible text of each cell of each row of a tool's group, as a person reads them. */
export async function toolRows(page: Page, tool: string): Promise<string[][]> {
  const rows = toolGroup(page, tool).locator('tr');
  const out: string[][] = [];
  for (let i = 0; i < (await rows.count()); i++) out.push((await rows.nth(i).locator('th, td').allInnerTexts()).map((t) => t.trim()));
  return out;
}

/** The value shown beside a label of the summary. */
export async function summaryValue(page: Page, label: string): Promise<string> {
  return (await page.locator('dt', { hasText: new RegExp(`^${label}$`) }).locator('xpath=following-sibling::dd[1]').innerText()).trim();
}
