import assert from 'node:assert/strict';
import http from 'node:http';
import type { StatusReport } from '../../src/client/status-report';
import { startBackend, type Backend } from '../support/backend';
import { get } from '../support/traffic';
import { waitFor } from '../support/wait';
import { register, startInProcess } from './helpers';

/** A GET with a Host of the test's choosing (a control page reached by name, host-form routing on the proxy). */
function getWithHost(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: host ? { host } : {} }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function report(control: string, host?: string): Promise<StatusReport> {
  const r = await getWithHost(Number(new URL(control).port), '/status.json', host);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as StatusReport;
}

describe("status: each tool's traffic, link and the last hour, from the proxy's own counters", function () {
  this.timeout(60_000);
  let web: Backend;
  let broken: Backend;
  before(async () => {
    web = await startBackend('web');
    broken = await startBackend((_req, res) => {
      res.statusCode = 500;
      res.end('broken');
    });
  });
  after(async () => {
    await web?.close();
    await broken?.close();
  });

  it('counts every request a tool was answered, and its 5xx, as the proxy answered them', async () => {
    const sb = await startInProcess({ proxy: true, registry: true });
    try {
      await register(sb.control, 'web', 'b1', web.url);
      await register(sb.control, 'broken', 'b1', broken.url);
      await waitFor('routed', () => (sb.feed!.current()?.lookup('broken') ? true : null));
      const port = sb.proxyPort!;
      for (let i = 0; i < 20; i++) assert.equal((await get(port, '/web/')).status, 200);
      for (let i = 0; i < 8; i++) assert.equal((await get(port, '/broken/x')).status, 500);
      for (let i = 0; i < 3; i++) assert.equal((await get(port, '/nosuch/')).status, 404);

      const r = await report(sb.control);
      const of = (tool: string) => r.tools.find((t) => t.tool === tool)!;
      assert.deepEqual([of('web').traffic!.requests, of('web').traffic!.serverErrors, of('web').traffic!.serverErrorRatio], [20, 0, 0]);
      assert.deepEqual([of('broken').traffic!.requests, of('broken').traffic!.serverErrors, of('broken').traffic!.serverErrorRatio], [8, 8, 1]);
      assert.ok(of('web').traffic!.requestsPerSecond > 0);
      assert.ok(r.traffic, 'a serve process runs a proxy');
      // The unknown tool counts in the totals, under no tool of the report.
      assert.deepEqual([r.traffic.requests, r.traffic.serverErrors], [31, 8]);
      assert.ok(r.traffic.windowSeconds >= 0 && r.traffic.windowSeconds <= 70, `window ${r.traffic.windowSeconds} s`);
      assert.equal(r.tools.some((t) => t.tool === 'nosuch'), false);
    } finally {
      await sb.stop();
    }
  });

  it("links each tool through the proxy: path form at the page's own host name, host form with a domain", async () => {
    const sb = await startInProcess({ proxy: true, registry: true });
    try {
      await register(sb.control, 'web', 'b1', web.url);
      const r = await report(sb.control);
      const url = r.tools.find((t) => t.tool === 'web')!.url!;
      assert.equal(url, `http://127.0.0.1:${sb.proxyPort}/web/`);
      assert.equal((await fetch(url)).status, 200, 'the link reaches the tool');
      const byName = await report(sb.control, `localhost:${sb.controlPort}`);
      assert.equal(byName.tools.find((t) => t.tool === 'web')!.url, `http://localhost:${sb.proxyPort}/web/`);
    } finally {
      await sb.stop();
    }
    const hosted = await startInProcess({ proxy: true, registry: true }, undefined, { SWITCHBOARD_DOMAIN: 'tools.example' });
    try {
      await register(hosted.control, 'web', 'b1', web.url);
      const url = (await report(hosted.control)).tools.find((t) => t.tool === 'web')!.url!;
      assert.equal(url, `http://web.tools.example:${hosted.proxyPort}/`);
      const answer = await getWithHost(hosted.proxyPort!, '/', new URL(url).host);
      assert.deepEqual(answer, { status: 200, body: 'web /' }, 'the host-form link names the tool');
    } finally {
      await hosted.stop();
    }
  });

  it('samples the last hour: live routes, lost tools, requests per second and 5xx ratio', async () => {
    const sb = await startInProcess({ proxy: true, registry: true }, undefined, {}, { statusSampleMs: 50 });
    try {
      await register(sb.control, 'web', 'b1', web.url);
      await register(sb.control, 'broken', 'b1', broken.url);
      await waitFor('routed', () => (sb.feed!.current()?.lookup('broken') ? true : null));
      const sample = await waitFor(
        'a sample with traffic in it',
        async () => {
          await get(sb.proxyPort!, '/web/');
          await get(sb.proxyPort!, '/broken/');
          const r = await report(sb.control);
          return r.history.samples.slice(0, -1).find((s) => s.routes === 2 && s.requestsPerSecond !== null && s.requestsPerSecond > 0) ?? null;
        },
        20_000,
        20,
      );
      assert.equal(sample.lostTools, 0);
      assert.ok(sample.serverErrorRatio !== null && sample.serverErrorRatio > 0 && sample.serverErrorRatio < 1, `ratio ${sample.serverErrorRatio}`);
      const r = await report(sb.control);
      assert.equal(r.history.sampleSeconds, 0.15);
      const times = r.history.samples.map((s) => Date.parse(s.at));
      assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
      assert.equal(r.history.samples.at(-1)!.at, r.generatedAt, 'the newest point is the report itself');
    } finally {
      await sb.stop();
    }
  });

  it('a registry-only process counts no request: no traffic, no link, rates and charts say why', async () => {
    const sb = await startInProcess({ proxy: false, registry: true });
    try {
      await register(sb.control, 'web', 'b1', web.url);
      const r = await report(sb.control);
      assert.equal(r.traffic, null);
      assert.deepEqual(r.tools.map((t) => [t.tool, t.state, t.url, t.traffic]), [['web', 'live', null, null]]);
      assert.equal(r.history.samples.at(-1)!.requestsPerSecond, null);
      assert.equal(typeof r.history.samples.at(-1)!.routes, 'number', 'it follows the table: routes are known');
      const page = await (await fetch(`${sb.control}/?refresh=3600`)).text();
      assert.match(page, /none counted here: this process runs no proxy/);
      assert.match(page, /no proxy in this process/);
    } finally {
      await sb.stop();
    }
  });
});
