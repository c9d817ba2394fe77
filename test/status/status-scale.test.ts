import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import type { InProcess } from '../support/in-process';
import { waitFor } from '../support/wait';
import { launchChromium } from './browser';
import { seedFleet, toolName } from './fleet';
import { startInProcess } from './helpers';

const SHAPE = { tools: 10_000, discovered: 40, held: 25, notRunning: 60 };

/**
 * A loose bound, not a target: the machine is shared, so a test may only catch the page becoming unusable
 * (seconds per filter), never judge how fast it is. The figures are printed; the target is under a second.
 */
const UNUSABLE_MS = 5000;

interface PageGlobals {
  document: { body: { hasAttribute(name: string): boolean }; querySelectorAll(s: string): { length: number } };
}

/** Waits until the page, idle (no update in flight), shows `count` tool groups; answers how long it took from `started`. */
async function shows(page: Page, count: number, started: number): Promise<number> {
  await page.waitForFunction(
    (n) => {
      const d = (globalThis as unknown as PageGlobals).document;
      return !d.body.hasAttribute('aria-busy') && d.querySelectorAll('tbody th').length === n;
    },
    count,
    { timeout: 30_000 },
  );
  return Date.now() - started;
}

describe('status page with 10,000 tools (headless Chromium)', function () {
  this.timeout(180_000);
  let browser: Browser;
  let sb: InProcess;

  before(async () => {
    browser = await launchChromium();
    // Discovery off: the reconciler would drop the seeded discovered backends, which answer no probe.
    sb = await startInProcess({ proxy: true, registry: true }, undefined, {}, { overrides: { discovery: { enabled: false } } });
    const started = Date.now();
    await seedFleet(sb.registry!, sb.store, SHAPE);
    const routes = SHAPE.tools - SHAPE.notRunning - SHAPE.held;
    await waitFor('the fleet routed', () => (sb.feed!.current()?.routeCount === routes ? true : null), 60_000, 100);
    console.log(`      seeded ${SHAPE.tools} tools in ${Date.now() - started} ms`);
  });
  after(async () => {
    await browser?.close();
    await sb?.stop();
  });

  it('renders the first page, filters by name and by state as the operator types, and shows all 10,000 on request', async () => {
    const ctx = await browser.newContext({ javaScriptEnabled: true });
    try {
      const page = await ctx.newPage();
      // The browser is already running when an operator opens the page: its renderer starts before the clock.
      await page.goto(`${sb.control}/healthz`);
      let started = Date.now();
      await page.goto(`${sb.control}/?refresh=3600`);
      const firstPage = await shows(page, 200, started);
      assert.match(await page.locator('p.shown').innerText(), /^Showing 1–200 of 10,000 matching tools · next 200$/);
      // Viewed again: the process has built a report before (its code is warm, as on a page refresh).
      started = Date.now();
      await page.goto(`${sb.control}/?refresh=3600`);
      const again = await shows(page, 200, started);
      const counts = (await page.locator('nav.states a').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(counts, ['all 10,000', 'lost 0', 'held 25', 'not running 60', 'discovered 40', 'live 9,875']);

      // Typed as a person types: each key a filter of 10,000 tools; the time is from the last key.
      await page.locator('input[name=tool]').pressSequentially('tool-0999', { delay: 30 });
      started = Date.now();
      const byName = await shows(page, 10, started);
      assert.deepEqual((await page.locator('tbody th').allInnerTexts()).map((t) => t.trim()), Array.from({ length: 10 }, (_, i) => toolName(9990 + i)));

      await page.fill('input[name=tool]', '');
      started = Date.now();
      await page.selectOption('select[name=state]', 'held');
      const byState = await shows(page, SHAPE.held, started);
      assert.deepEqual((await page.locator('tbody th').allInnerTexts()).map((t) => t.trim()), Array.from({ length: SHAPE.held }, (_, i) => toolName(SHAPE.discovered + i)));
      assert.equal(await page.locator('tbody.s-held').count(), SHAPE.held);

      started = Date.now();
      await page.goto(`${sb.control}/?refresh=3600&sort=name&limit=10000`);
      const everyTool = await shows(page, SHAPE.tools, started);
      assert.equal(await page.locator('tbody.s-discovered').count(), SHAPE.discovered);

      console.log(
        `      10,000 tools: first page of 200 in ${firstPage} ms (viewed again: ${again} ms), name filter in ${byName} ms, state filter in ${byState} ms; all 10,000 rows at once (limit=10000) in ${everyTool} ms`,
      );
      // The page shows 200 tools at a time for this reason: every row at once is only checked, not bounded.
      for (const [what, ms] of Object.entries({ firstPage, again, byName, byState })) assert.ok(ms < UNUSABLE_MS, `${what}: ${ms} ms`);
    } finally {
      await ctx.close();
    }
  });
});
