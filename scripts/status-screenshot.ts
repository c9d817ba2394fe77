// Takes docs/status-page.png: the status page of a seeded 10,000-tool fleet in headless Chromium, after a
// store loss (some tools lost), with self-preservation holding a few backends, some tools discovered or
// not running, and a minute of real traffic through the proxy (one tool answering 5xx now and then).
//
//   node --require tsx/cjs scripts/status-screenshot.ts [OUT.png]
//
// Needs redis-server and /usr/bin/chromium, as the tests do. Takes about two minutes; TOOLS=N and
// TRAFFIC_MS=MS make a smaller, quicker one.
import { statSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../src/logger';
import { RedisStore } from '../src/registry/redis-store';
import { startBackend } from '../test/support/backend';
import { startInProcess } from '../test/support/in-process';
import { RedisServer } from '../test/support/redis-server';
import { Traffic } from '../test/support/traffic';
import { sleep, waitFor } from '../test/support/wait';
import { launchChromium } from '../test/status/browser';
import { restartEmpty, seedFleet, toolName, type FleetShape } from '../test/status/fleet';

const OUT = process.argv[2] ?? path.join(__dirname, '..', 'docs', 'status-page.png');
const SHAPE: FleetShape = { tools: Number(process.env.TOOLS ?? 10_000), discovered: 40, held: 25, notRunning: 60 };
const LOST = 12;
const TRAFFIC_MS = Number(process.env.TRAFFIC_MS ?? 60_000);

const ADMIN_TOKEN = 'screenshot-admin-token-0123456789';
// The seeded discovered backends answer no probe: the reconciler would drop them.
const NO_DISCOVERY = { discovery: { enabled: false } };

async function main(): Promise<void> {
  const redis = await new RedisServer().start();
  const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'screenshot:', commandTimeoutMs: 2000, logger: silentLogger() });
  // The page is the proxy's (a split deployment's proxy process); registries come and go beside it.
  const proxy = await startInProcess({ adminToken: ADMIN_TOKEN, store, roles: { proxy: true, registry: false }, statusSampleMs: 2000 });
  const shop = await startBackend('shop');
  const search = await startBackend('search');
  let n = 0;
  const billing = await startBackend((_req, res) => {
    res.statusCode = ++n % 12 === 0 ? 500 : 200;
    res.end('billing');
  });
  try {
    const first = await startInProcess({ adminToken: ADMIN_TOKEN, store, roles: { proxy: false, registry: true }, overrides: NO_DISCOVERY });
    await seedFleet(first.registry!, store, SHAPE);
    await waitFor('the fleet followed', () => (proxy.feed!.current()!.routeCount >= SHAPE.tools - SHAPE.notRunning - SHAPE.held ? true : null), 60_000, 100);
    // The registry and the store restart together, empty: the registry has no copy to write back, so every
    // tool is lost until its heartbeat comes back, and LOST of them never do.
    const second = await restartEmpty(redis, first, () => startInProcess({ adminToken: ADMIN_TOKEN, store, roles: { proxy: false, registry: true }, overrides: NO_DISCOVERY }), proxy.feed!);
    const lost = new Set(Array.from({ length: LOST }, (_, i) => toolName(SHAPE.tools - 1 - i * Math.max(1, Math.floor(SHAPE.tools / 270)))));
    await seedFleet(second.registry!, store, SHAPE, lost);
    await waitFor('the others back', () => (proxy.feed!.lostTools().length === LOST ? true : null), 60_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}: lost ${proxy.feed!.lostTools().length}, e.g. ${proxy.feed!.lostTools().slice(0, 5).join(' ')}`);
    });
    for (const [tool, url] of [['shop', shop.url], ['billing', billing.url], ['search', search.url]]) {
      await second.registry!.heartbeat({ tool, id: 'web-1', url, ttl: 3600, clientVersion: 'launcher/1.4.2', source: 'registered' });
    }
    await waitFor('the shops routed', () => (proxy.feed!.current()!.lookup('search') ? true : null), 30_000, 100);
    // Traffic goes on while the page is taken, so its newest point is not an idle moment.
    const traffic = new Traffic({ proxies: [proxy.proxyUrl], tools: ['shop', 'billing', 'search', 'shop'], loops: 4, pauseMs: 15, maxMs: TRAFFIC_MS + 60_000, maxPerLoop: 1e6 });
    await sleep(TRAFFIC_MS);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
      await page.goto(`${proxy.control}/?refresh=3600`);
      await page.screenshot({ path: OUT });
    } finally {
      await browser.close();
      await traffic.stop();
    }
    console.log(`${OUT}: ${Math.round(statSync(OUT).size / 1024)} KiB`);
    await second.stop();
  } finally {
    await proxy.stop();
    await store.close();
    await shop.close();
    await search.close();
    await billing.close();
    await redis.stop();
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
