import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import { RedisServer } from '../support/redis-server';
import { STATUS_SCRIPT } from '../../src/control/status-script';
import { launchChromium, summaryValue, toolGroup, toolRows } from './browser';
import { ADMIN_TOKEN, api, register, startInProcess } from './helpers';
import { waitFor } from '../support/wait';
import { startBackend, deadPort, type Backend } from '../support/backend';

/** The six backend cells of a row, whether or not it is the group's first (which adds the tool's own cells and assignment). */
function backendCells(rows: string[][], id: string): string[] {
  for (const [i, r] of rows.entries()) {
    const cells = i === 0 ? r.slice(4, -1) : r;
    if (cells[0] === id) return cells;
  }
  throw new Error(`no row for backend ${id} in ${JSON.stringify(rows)}`);
}

function leaseSeconds(cell: string): number {
  const m = /^(\d+) s$/.exec(cell);
  assert.ok(m, `lease cell "${cell}" reads as seconds`);
  return Number(m[1]);
}

// Pages are opened with a long refresh so that a reload cannot land in the middle of the checks; the
// default refresh is checked on its own.
const STILL = '/?refresh=3600';

describe('status page in headless Chromium', function () {
  this.timeout(90_000);
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  describe('serve on the embedded store', () => {
    let sb: Awaited<ReturnType<typeof startInProcess>>;
    let web: Backend;
    let found: Backend;
    let dead: number;
    let idlePort: number;
    let toolToken: string;
    let ctx: BrowserContext;
    let page: Page;

    before(async () => {
      sb = await startInProcess({ proxy: true, registry: true });
      web = await startBackend('web');
      found = await startBackend('found');
      dead = await deadPort();
      await register(sb.control, 'web', 'b1', web.url, { ttl: 60, clientVersion: 'launcher/1.4.2' });
      await register(sb.control, 'web', 'b2', `http://127.0.0.1:${dead}`, { ttl: 60 });
      // A discovered backend is what fallback port discovery writes: through the registry's own rules.
      await sb.registry!.heartbeat({ tool: 'found', id: 'probe-1', url: found.url, source: 'discovered' });
      const idle = await api(sb.control, 'POST', '/v1/ports', { tool: 'idle', host: '127.0.0.1' });
      assert.equal(idle.status, 200);
      idlePort = idle.body.port;
      const issued = await api(sb.control, 'POST', '/v1/tools/web/tokens', {});
      assert.equal(issued.status, 201);
      toolToken = issued.body.token;
      ctx = await browser.newContext({ javaScriptEnabled: false });
      page = await ctx.newPage();
    });
    after(async () => {
      await ctx?.close();
      await sb?.stop();
      await web?.close();
      await found?.close();
    });

    it('answers without a token, as HTML that refreshes itself without JavaScript and runs no script but its own', async () => {
      const res = await page.goto(`${sb.control}/`);
      assert.equal(res?.status(), 200);
      assert.match(res?.headers()['content-type'] ?? '', /^text\/html/);
      assert.equal(await page.title(), 'Switchboard status');
      assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '5');
      assert.deepEqual(await page.locator('script').allTextContents(), [STATUS_SCRIPT]);
      const csp = res?.headers()['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*';/, 'one script, allowed by its hash alone');
      assert.equal(await page.locator('h1').innerText(), 'Switchboard status');
    });

    it('shows every tool with its backends, source, lease seconds, health and assignments, and the table version and store state', async () => {
      const version = (await sb.store.version()).version;
      await page.goto(`${sb.control}${STILL}`);

      assert.equal(await summaryValue(page, 'Store'), 'memory, reachable');
      assert.match(await summaryValue(page, 'Table version'), new RegExp(`^${version} \\(epoch `));
      assert.match(await summaryValue(page, 'Tools'), /^3 tools, 2 with a live backend, 3 backends/);

      const heads = (await page.locator('thead th').allInnerTexts()).map((t) => t.trim().toLowerCase());
      assert.deepEqual(heads, ['tool', 'state', 'req/s', '5xx', 'backend', 'url', 'source', 'lease left', 'health', 'client', 'assignment']);
      // Tools each once, the most pressing state first (the page's default order).
      assert.deepEqual((await page.locator('tbody th').allInnerTexts()).map((t) => t.trim()), ['idle', 'found', 'web']);

      const webRows = await toolRows(page, 'web');
      assert.equal(webRows.length, 2, 'one row per backend');
      assert.equal(webRows[0][0], 'web');
      const b1 = backendCells(webRows, 'b1');
      assert.deepEqual([b1[1], b1[2], b1[4], b1[5]], [web.url, 'registered', 'ok', 'launcher/1.4.2']);
      const lease = leaseSeconds(b1[3]);
      assert.ok(lease > 0 && lease <= 60, `lease left ${lease} s of a 60 s lease`);
      const b2 = backendCells(webRows, 'b2');
      assert.equal(b2[1], `http://127.0.0.1:${dead}`);
      assert.equal(b2[5], '-', 'no client version sent');
      const webAssignments = webRows[0][webRows[0].length - 1];
      assert.ok(webAssignments.includes(`127.0.0.1:${web.port}`) && webAssignments.includes(`127.0.0.1:${dead}`), webAssignments);

      const foundRows = await toolRows(page, 'found');
      const probe = backendCells(foundRows, 'probe-1');
      assert.deepEqual([probe[1], probe[2]], [found.url, 'discovered']);
      assert.ok(leaseSeconds(probe[3]) > 0);
      assert.equal(foundRows[0][foundRows[0].length - 1], `127.0.0.1:${found.port}`);

      const idleRows = await toolRows(page, 'idle');
      assert.deepEqual(idleRows, [['idle', 'not running', '0', '-', '(no live backend)', '-', '-', '-', '-', '-', `127.0.0.1:${idlePort}`]]);
    });

    it("shows the proxy's passive health: a backend that refuses connections is marked down", async () => {
      const health = await waitFor('b2 shown down', async () => {
        // Real traffic through the proxy: round-robin reaches b2, which refuses, and starts a cool-off.
        for (let i = 0; i < 2; i++) await fetch(`${sb.proxyUrl}/web/`, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer());
        await page.goto(`${sb.control}${STILL}`);
        const cells = backendCells(await toolRows(page, 'web'), 'b2');
        return cells[4] === 'down' ? cells[4] : null;
      }, 30_000, 100);
      assert.equal(health, 'down');
      assert.equal(backendCells(await toolRows(page, 'web'), 'b1')[4], 'ok');
    });

    it('shows no token: not the admin token, not a tool token, not an Authorization header the browser sent', async () => {
      const sent = 'Bearer header-secret-that-must-not-echo-42';
      const withHeader = await browser.newContext({ javaScriptEnabled: false, extraHTTPHeaders: { authorization: sent } });
      try {
        const p = await withHeader.newPage();
        assert.equal((await p.goto(`${sb.control}/`))?.status(), 200);
        const html = await p.content();
        const text = await p.locator('body').innerText();
        for (const secret of [ADMIN_TOKEN, toolToken, 'header-secret-that-must-not-echo-42']) {
          assert.ok(!html.includes(secret), 'secret in the HTML');
          assert.ok(!text.includes(secret), 'secret in the visible text');
        }
        assert.ok(text.includes('web'), 'the page did render the tools');
        const json = await (await fetch(`${sb.control}/status.json`, { headers: { authorization: sent } })).text();
        for (const secret of [ADMIN_TOKEN, toolToken, 'header-secret-that-must-not-echo-42']) assert.ok(!json.includes(secret), 'secret in status.json');
      } finally {
        await withHeader.close();
      }
    });

    it('escapes a hostile clientVersion: shown as text, nothing runs, no element is injected', async () => {
      const hostile = ["<script>document.title='pwned'</script>", `"'><img src=x onerror="document.title='pwned'">`];
      const evil = await startBackend('evil');
      const evil2 = await startBackend('evil2');
      try {
        await register(sb.control, 'evil', 'x1', evil.url, { clientVersion: hostile[0] });
        await register(sb.control, 'evil', 'x2', evil2.url, { clientVersion: hostile[1] });
        // With JavaScript enabled too: escaping, not the disabled engine, must be what keeps it inert.
        for (const javaScriptEnabled of [false, true]) {
          const c = await browser.newContext({ javaScriptEnabled });
          try {
            const p = await c.newPage();
            let dialogs = 0;
            p.on('dialog', (d) => {
              dialogs++;
              void d.dismiss();
            });
            await p.goto(`${sb.control}${STILL}`);
            const rows = await toolRows(p, 'evil');
            assert.equal(backendCells(rows, 'x1')[5], hostile[0]);
            assert.equal(backendCells(rows, 'x2')[5], hostile[1]);
            assert.deepEqual(await p.locator('script').allTextContents(), [STATUS_SCRIPT], 'no script but the page\'s own');
            assert.equal(await p.locator('img').count(), 0);
            assert.equal(await p.title(), 'Switchboard status');
            assert.equal(dialogs, 0);
          } finally {
            await c.close();
          }
        }
      } finally {
        await evil.close();
        await evil2.close();
      }
    });

    it('refuses a bad refresh value with a JSON error naming the field', async () => {
      const res = await fetch(`${sb.control}/?refresh=0`);
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { code: string; field: string } };
      assert.equal(body.error.field, 'refresh');
    });
  });

  describe('when the store is unreachable', () => {
    let redis: RedisServer;
    before(async () => {
      redis = await new RedisServer().start();
    });
    after(async () => {
      await redis?.stop();
    });

    it('still renders, says "store unreachable" and shows the last known tools', async () => {
      const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'status-page:', commandTimeoutMs: 500, logger: silentLogger() });
      const sb = await startInProcess({ proxy: true, registry: true }, store);
      const web = await startBackend('web');
      const ctx = await browser.newContext({ javaScriptEnabled: false });
      try {
        await register(sb.control, 'web', 'b1', web.url, { ttl: 120 });
        const page = await ctx.newPage();
        await page.goto(`${sb.control}${STILL}`);
        assert.equal(await summaryValue(page, 'Store'), 'redis, reachable');
        assert.equal(backendCells(await toolRows(page, 'web'), 'b1')[1], web.url);

        await redis.kill();
        const res = await page.goto(`${sb.control}${STILL}`);
        assert.equal(res?.status(), 200);
        assert.match(await summaryValue(page, 'Store'), /^redis, store unreachable: /);
        assert.ok(await toolGroup(page, 'web').isVisible());
        const b1 = backendCells(await toolRows(page, 'web'), 'b1');
        assert.equal(b1[1], web.url);
        assert.ok(leaseSeconds(b1[3]) > 0, 'the lease as last read from the store');
      } finally {
        await ctx.close();
        await sb.stop();
        await store.close();
        await web.close();
      }
    });
  });
});
