import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import { startBackend, type Backend } from '../support/backend';
import type { InProcess } from '../support/in-process';
import { RedisServer } from '../support/redis-server';
import { get } from '../support/traffic';
import { waitFor } from '../support/wait';
import { launchChromium, toolRows } from './browser';
import { restartEmpty, seedFleet, toolName } from './fleet';
import { register, startInProcess } from './helpers';

/** The tool names of the table's groups, top to bottom. */
async function shownTools(page: Page): Promise<string[]> {
  return (await page.locator('tbody th').allInnerTexts()).map((t) => t.trim());
}

/** The background a tool's row group is drawn with. */
async function rowBackground(page: Page, tool: string): Promise<string> {
  return page.locator('tbody th', { hasText: new RegExp(`^${tool}$`) }).evaluate((th) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(th).backgroundColor);
}

// Page-side functions see the page through `globalThis` (the tests compile without the DOM's types); they
// are functions, not strings: the page's Content-Security-Policy refuses eval, Playwright's included.
interface PageGlobals {
  loaded?: number;
  document: {
    body: { hasAttribute(name: string): boolean };
    activeElement: { name?: string } | null;
    querySelector(s: string): { textContent: string | null } | null;
    querySelectorAll(s: string): { length: number };
  };
}
const markLoaded = (): void => {
  (globalThis as unknown as PageGlobals).loaded = 1;
};
const stillLoaded = (): boolean => (globalThis as unknown as PageGlobals).loaded === 1;
const focusedName = (): string | undefined => (globalThis as unknown as PageGlobals).document.activeElement?.name;

const STILL = '/?refresh=3600';
// A fleet of 60 seeded tools (tool-00000..): 0-2 discovered, 3-4 held, 5-9 not running, the rest live; and web.
const SHAPE = { tools: 60, discovered: 3, held: 2, notRunning: 5 };

describe('status page: filter, sort, pages, highlights and links (headless Chromium)', function () {
  this.timeout(90_000);
  let browser: Browser;
  let sb: InProcess;
  let web: Backend;

  before(async () => {
    browser = await launchChromium();
    // Discovery off: the reconciler would drop the seeded discovered backends, which answer no probe.
    // A tick of 1 s: rates over the last 6 s, a sample of the charts every 3 s.
    sb = await startInProcess({ proxy: true, registry: true }, undefined, {}, { statusSampleMs: 1000, overrides: { discovery: { enabled: false } } });
    web = await startBackend('web');
    await register(sb.control, 'web', 'b1', web.url);
    await seedFleet(sb.registry!, sb.store, SHAPE);
    await waitFor('the fleet routed', () => (sb.feed!.current()?.lookup('web') && sb.feed!.current()!.routeCount === 1 + SHAPE.tools - SHAPE.notRunning - SHAPE.held ? true : null), 20_000);
  });
  after(async () => {
    await browser?.close();
    await sb?.stop();
    await web?.close();
  });

  async function withPage(javaScriptEnabled: boolean, use: (page: Page, ctx: BrowserContext) => Promise<void>): Promise<void> {
    const ctx = await browser.newContext({ javaScriptEnabled });
    try {
      await use(await ctx.newPage(), ctx);
    } finally {
      await ctx.close();
    }
  }

  it('without JavaScript: the form narrows the table by name and by state, and the URL holds the filter', async () => {
    await withPage(false, async (page) => {
      await page.goto(`${sb.control}${STILL}`);
      await page.fill('input[name=tool]', 'tool-0001');
      await Promise.all([page.waitForURL(/tool=tool-0001/), page.press('input[name=tool]', 'Enter')]);
      assert.deepEqual(await shownTools(page), Array.from({ length: 10 }, (_, i) => toolName(10 + i)));
      assert.equal(await page.inputValue('input[name=tool]'), 'tool-0001', 'the form shows the filter it answered');
      assert.match(await page.locator('p.shown').innerText(), /^Showing 1–10 of 10 matching tools/);

      await page.fill('input[name=tool]', 'tool-*');
      await page.selectOption('select[name=state]', 'held');
      await Promise.all([page.waitForURL(/state=held/), page.click('form.filter button')]);
      assert.deepEqual(await shownTools(page), [toolName(3), toolName(4)]);
      assert.deepEqual((await toolRows(page, toolName(3)))[0].slice(0, 5), [toolName(3), 'held', '0', '-', 'b1']);
    });
  });

  it('with JavaScript: filters in place as the operator types: no reload, the focus and text kept, the URL updated', async () => {
    await withPage(true, async (page) => {
      await page.goto(`${sb.control}${STILL}`);
      await page.evaluate(markLoaded);
      const started = Date.now();
      await page.locator('input[name=tool]').pressSequentially('tool-0000');
      await page.waitForFunction(
        () => {
          const d = (globalThis as unknown as PageGlobals).document;
          return d.querySelectorAll('tbody th').length === 10 && !d.body.hasAttribute('aria-busy');
        },
        null,
        { timeout: 30_000 },
      );
      console.log(`      typed and filtered in ${Date.now() - started} ms (10 keys, 61 tools)`);
      // The most pressing state first: held, not running, discovered.
      assert.deepEqual(await shownTools(page), [3, 4, 5, 6, 7, 8, 9, 0, 1, 2].map(toolName));
      assert.equal(await page.evaluate(stillLoaded), true, 'the page was not reloaded');
      assert.equal(await page.evaluate(focusedName), 'tool');
      assert.equal(await page.inputValue('input[name=tool]'), 'tool-0000');
      assert.equal(new URL(page.url()).search, '?tool=tool-0000&sort=state&refresh=3600');
    });
  });

  it('with JavaScript: refreshes in place, keeping what is being typed', async () => {
    await withPage(true, async (page) => {
      await page.goto(`${sb.control}/?refresh=1`);
      await page.evaluate(markLoaded);
      await page.locator('input[name=tool]').pressSequentially('fresh');
      const shows = ([selector, text]: string[]) => (globalThis as unknown as PageGlobals).document.querySelector(selector)?.textContent === text;
      await page.waitForFunction(shows, ['tbody td', 'no tool matches the filter'], { timeout: 30_000 });
      await register(sb.control, 'fresh', 'b1', web.url.replace('127.0.0.1', '127.0.0.2'));
      await page.waitForFunction(shows, ['tbody th', 'fresh'], { timeout: 30_000 });
      assert.equal(await page.evaluate(stillLoaded), true, 'the page was not reloaded');
      assert.equal(await page.inputValue('input[name=tool]'), 'fresh');
      await sb.registry!.deregister('fresh', 'b1');
      await sb.registry!.releaseAssignments(await sb.registry!.assignmentsAt('127.0.0.2', web.port));
    });
  });

  it('counts each state, links to its tools, and highlights lost, held, not running and discovered rows', async () => {
    await withPage(false, async (page) => {
      await page.goto(`${sb.control}${STILL}`);
      const links = (await page.locator('nav.states a').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(links, ['all 61', 'lost 0', 'held 2', 'not running 5', 'discovered 3', 'live 51']);
      await Promise.all([page.waitForURL(/state=not_running/), page.click('nav.states a:has-text("not running")')]);
      assert.deepEqual(await shownTools(page), [5, 6, 7, 8, 9].map(toolName));
      assert.equal(await page.locator('nav.states a[aria-current]').innerText(), 'not running 5');
      await page.goto(`${sb.control}${STILL}&sort=name`);
      const colours = {
        held: await rowBackground(page, toolName(3)),
        notRunning: await rowBackground(page, toolName(5)),
        discovered: await rowBackground(page, toolName(0)),
        live: await rowBackground(page, toolName(20)),
      };
      assert.equal(new Set(Object.values(colours)).size, 4, `four different backgrounds: ${JSON.stringify(colours)}`);
      assert.equal(colours.live, 'rgba(0, 0, 0, 0)', 'live rows are not highlighted');
      assert.equal(await page.locator(`tbody.s-held th`).count(), 2);
    });
  });

  it('sorts by requests per second and by 5xx ratio from the column heads', async () => {
    await withPage(false, async (page) => {
      // Requests just before each look: the rates are over the last few seconds here.
      const webRow = await waitFor('web first by requests per second', async () => {
        for (let i = 0; i < 10; i++) assert.equal((await get(sb.proxyPort!, '/web/')).status, 200);
        await page.goto(`${sb.control}${STILL}`);
        await Promise.all([page.waitForURL(/sort=rps/), page.click('thead a:text-is("req/s")')]);
        return (await shownTools(page))[0] === 'web' ? (await toolRows(page, 'web'))[0] : null;
      }, 30_000);
      assert.ok(Number(webRow[2]) > 0, `web's requests per second: ${webRow[2]}`);
      assert.equal(webRow[3], '0 %');
      assert.equal(await page.locator('thead th[aria-sort]').innerText(), 'req/s');

      // tool-00000's discovered backend refuses connections: every request to it is answered 502.
      const failing = toolName(0);
      const failingRow = await waitFor('the failing tool first by 5xx ratio', async () => {
        for (let i = 0; i < 3; i++) assert.equal((await get(sb.proxyPort!, `/${failing}/`)).status, 502);
        await get(sb.proxyPort!, '/web/');
        await page.goto(`${sb.control}${STILL}`);
        await Promise.all([page.waitForURL(/sort=errors/), page.click('thead a:text-is("5xx")')]);
        return (await shownTools(page))[0] === failing ? (await toolRows(page, failing))[0] : null;
      }, 30_000);
      assert.equal(failingRow[3], '100.0 %');
      assert.equal((await shownTools(page))[1], 'web', 'then the tools without 5xx, busiest first');
    });
  });

  it('shows a page of tools at a time, with links to the next and previous', async () => {
    await withPage(false, async (page) => {
      await page.goto(`${sb.control}${STILL}&sort=name&limit=20`);
      assert.equal(await page.locator('tbody').count(), 20);
      assert.match(await page.locator('p.shown').innerText(), /^Showing 1–20 of 61 matching tools · next 20$/);
      await Promise.all([page.waitForURL(/offset=20/), page.click('a[rel=next]')]);
      assert.equal((await shownTools(page))[0], toolName(20));
      assert.match(await page.locator('p.shown').innerText(), /^Showing 21–40 of 61 matching tools · previous 20 · next 20$/);
    });
  });

  it("links each tool's name to the tool, through this proxy", async () => {
    await withPage(false, async (page) => {
      await page.goto(`${sb.control}${STILL}&tool=web`);
      assert.equal(await page.locator('tbody th a').getAttribute('href'), `http://127.0.0.1:${sb.proxyPort}/web/`);
      await Promise.all([page.waitForURL(`http://127.0.0.1:${sb.proxyPort}/web/`), page.click('tbody th a')]);
      assert.equal(await page.locator('body').innerText(), 'web /web/');
    });
  });

  it('draws the last hour as four inline SVG charts, and loads nothing from anywhere else', async () => {
    await waitFor('two samples', async () => ((await (await fetch(`${sb.control}/status.json`)).json()) as { history: { samples: unknown[] } }).history.samples.length >= 3 || null, 20_000);
    await withPage(true, async (page) => {
      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      await page.goto(`${sb.control}${STILL}`);
      const titles = await page.locator('.charts figcaption').evaluateAll((all) => all.map((c) => (c.firstChild?.textContent ?? '').trim()));
      assert.deepEqual(titles, ['Live routes', 'Lost tools', 'Requests per second', '5xx ratio']);
      assert.equal(await page.locator('.charts svg').count(), 4);
      assert.match(await page.locator('.charts figcaption').first().innerText(), /^Live routes 5[45]$/);
      assert.ok((await page.locator('.charts svg').first().locator('polyline').count()) >= 1, 'the routes line is drawn');
      assert.deepEqual(requested.filter((u) => !u.startsWith(sb.control)), [], 'no request leaves the control port');
    });
  });

  it('refuses a filter it cannot read with a JSON error naming the field; /status.json takes the same filter', async () => {
    for (const [path, field] of [['/?state=dead', 'state'], ['/?sort=size', 'sort'], ['/status.json?limit=0', 'limit'], ['/status.json?offset=x', 'offset']]) {
      const res = await fetch(`${sb.control}${path}`);
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as { error: { field: string } }).error.field, field, path);
    }
    const held = (await (await fetch(`${sb.control}/status.json?state=held&tool=tool-*`)).json()) as { selection: unknown; tools: Array<{ tool: string }>; counts: { tools: number } };
    assert.deepEqual(held.selection, { tool: 'tool-*', states: ['held'], sort: 'name', matched: 2, offset: 0, limit: null });
    assert.deepEqual(held.tools.map((t) => t.tool), [toolName(3), toolName(4)]);
    assert.equal(held.counts.tools, 61, 'the counts are of every tool');
  });
});

describe('status page: tools the store lost (headless Chromium, Redis restarted empty)', function () {
  this.timeout(90_000);

  it('lists a lost tool the store no longer holds, highlighted, and counts it', async () => {
    const redis = await new RedisServer().start();
    const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'status-lost:', commandTimeoutMs: 500, logger: silentLogger() });
    const proxy = await startInProcess({ proxy: true, registry: false }, store);
    const startRegistry = () => startInProcess({ proxy: false, registry: true }, store);
    let registry = await startRegistry();
    const browser = await launchChromium();
    try {
      await seedFleet(registry.registry!, store, { tools: 3, discovered: 0, held: 0, notRunning: 0 });
      await waitFor('followed', () => (proxy.feed!.current()?.routeCount === 3 ? true : null), 20_000);
      registry = await restartEmpty(redis, registry, startRegistry, proxy.feed!);
      // Two of the three come back with their heartbeats; the last one never does.
      await seedFleet(registry.registry!, store, { tools: 3, discovered: 0, held: 0, notRunning: 0 }, new Set([toolName(2)]));
      await waitFor('one lost', () => (proxy.feed!.lostTools().join() === toolName(2) ? true : null), 30_000);
      const ctx = await browser.newContext({ javaScriptEnabled: false });
      const page = await ctx.newPage();
      await page.goto(`${proxy.control}${STILL}`);
      assert.deepEqual(await shownTools(page), [toolName(2), toolName(0), toolName(1)], 'lost first');
      const rows = await toolRows(page, toolName(2));
      assert.deepEqual(rows[0].slice(1, 5), ['lost', '0', '-', '(not in the store)']);
      assert.equal(await page.locator('tbody.s-lost').count(), 1);
      assert.notEqual(await rowBackground(page, toolName(2)), await rowBackground(page, toolName(0)));
      assert.ok((await page.locator('nav.states a').allInnerTexts()).map((t) => t.trim()).includes('lost 1'));
      assert.match(await page.locator('.charts figcaption').nth(1).innerText(), /^Lost tools 1$/);
      await ctx.close();
    } finally {
      await browser.close();
      await registry.stop();
      await proxy.stop();
      await store.close();
      await redis.stop();
    }
  });
});
