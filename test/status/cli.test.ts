import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderStatusText } from '../../src/cli/status';
import type { StatusReport } from '../../src/control/status-data';
import { silentLogger } from '../../src/logger';
import { RedisStore } from '../../src/registry/redis-store';
import { runCli } from '../support/process';
import { RedisServer } from '../support/redis-server';
import { ADMIN_TOKEN, api, register, startInProcess } from './helpers';
import { startBackend, deadPort, type Backend } from '../support/backend';

const HEADER = ['TOOL', 'STATE', 'REQ/S', '5XX', 'BACKEND', 'URL', 'SOURCE', 'LEASE LEFT', 'HEALTH', 'CLIENT', 'ASSIGNMENT'];

/** A row without its tool's own cells (state, req/s, 5xx): the tool, then the backend's cells and the assignments. */
const backendColumns = (c: string[]): string[] => [c[0], ...c.slice(4)];

/** Cuts each row at the offsets where the header's column names start: aligned columns cut cleanly. */
function cutColumns(lines: string[]): string[][] {
  const header = lines[0];
  const starts = HEADER.map((h) => header.indexOf(h));
  assert.ok(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1])), `header has every column in order: ${header}`);
  return lines.slice(1).map((line) =>
    starts.map((s, i) => {
      // Every column but the first starts after a gap of at least two spaces.
      if (i > 0) assert.equal(line.slice(s - 2, s), '  ', `column ${HEADER[i]} starts at ${s} in "${line}"`);
      return line.slice(s, i + 1 < starts.length ? starts[i + 1] : undefined).trim();
    }),
  );
}

describe('switchboard status', function () {
  this.timeout(90_000);

  describe('against a serve process', () => {
    let sb: Awaited<ReturnType<typeof startInProcess>>;
    let web: Backend;
    let found: Backend;
    let dead: number;
    let idlePort: number;

    before(async () => {
      sb = await startInProcess({ proxy: true, registry: true });
      web = await startBackend('web');
      found = await startBackend('found');
      dead = await deadPort();
      await register(sb.control, 'web', 'b1', web.url, { ttl: 90, clientVersion: 'launcher/1.4.2' });
      await register(sb.control, 'web', 'b2', `http://127.0.0.1:${dead}`, { ttl: 90 });
      await sb.registry!.heartbeat({ tool: 'found', id: 'probe-1', url: found.url, source: 'discovered' });
      idlePort = (await api(sb.control, 'POST', '/v1/ports', { tool: 'idle', host: '127.0.0.1' })).body.port;
    });
    after(async () => {
      await sb?.stop();
      await web?.close();
      await found?.close();
    });

    it('prints the summary and the table in aligned columns', async () => {
      const version = (await sb.store.version()).version;
      const r = await runCli(['status', '--registry', sb.control, '--token', ADMIN_TOKEN]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.match(lines.find((l) => l.startsWith('Store:')) ?? '', /^Store: +memory, reachable$/);
      assert.match(lines.find((l) => l.startsWith('Table version:')) ?? '', new RegExp(`^Table version: +${version} \\(epoch `));
      const start = lines.findIndex((l) => l.startsWith('TOOL'));
      assert.ok(start > 0, r.stdout);
      const table = lines.slice(start).filter((l) => l !== '');
      assert.ok(table.every((l) => l === l.trimEnd()), 'no trailing spaces');
      const full = cutColumns(table);
      assert.deepEqual(full.map((c) => c.slice(0, 4)), [
        ['found', 'discovered', '0', '-'],
        ['idle', 'not running', '0', '-'],
        ['web', 'live', '0', '-'],
        ['web', 'live', '0', '-'],
      ], 'state and traffic of a serve process, which runs a proxy that had no request');
      const rows = full.map(backendColumns);
      const byBackend = new Map(rows.map((c) => [`${c[0]}/${c[1]}`, c]));
      const b1 = byBackend.get('web/b1')!;
      assert.deepEqual([b1[2], b1[3], b1[5], b1[6]], [web.url, 'registered', 'ok', 'launcher/1.4.2']);
      assert.match(b1[4], /^\d+ s$/);
      assert.ok(Number(b1[4].split(' ')[0]) > 0 && Number(b1[4].split(' ')[0]) <= 90);
      assert.ok(b1[7].includes(`127.0.0.1:${web.port}`) && b1[7].includes(`127.0.0.1:${dead}`));
      assert.equal(byBackend.get('web/b2')![2], `http://127.0.0.1:${dead}`);
      assert.deepEqual(byBackend.get('found/probe-1')!.slice(2, 4), [found.url, 'discovered']);
      assert.deepEqual(byBackend.get('idle/(no live backend)'), ['idle', '(no live backend)', '-', '-', '-', '-', '-', `127.0.0.1:${idlePort}`]);
      assert.deepEqual(rows.map((c) => c[0]), ['found', 'idle', 'web', 'web']);
    });

    it('--json prints a report that matches the API, with defaults from SWITCHBOARD_REGISTRY and SWITCHBOARD_TOKEN', async () => {
      const r = await runCli(['status', '--json'], { SWITCHBOARD_REGISTRY: sb.control, SWITCHBOARD_TOKEN: ADMIN_TOKEN });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as StatusReport;
      const listed = (await api(sb.control, 'GET', '/v1/tools')).body as { tools: Array<{ tool: string; backends: any[]; assignments: any[] }> };
      assert.deepEqual(
        report.tools.map((t) => ({ tool: t.tool, backends: t.backends.map((b) => [b.id, b.url, b.source, b.clientVersion]), assignments: t.assignments })),
        listed.tools.map((t) => ({
          tool: t.tool,
          backends: t.backends.map((b) => [b.id, b.url, b.source, b.clientVersion]),
          assignments: t.assignments.map((a) => ({ host: a.host, port: a.port })),
        })),
      );
      for (const t of listed.tools) {
        for (const b of t.backends) {
          const mine = report.tools.find((x) => x.tool === t.tool)!.backends.find((x) => x.id === b.id)!;
          assert.equal(mine.expiresAt, b.expiresAt);
          assert.ok(Math.abs((mine.leaseSecondsLeft ?? -100) - b.leaseSecondsLeft) <= 5);
          assert.ok(['ok', 'down'].includes(mine.health), 'a serve process runs a proxy: health is known');
        }
      }
      assert.deepEqual(report.table, await sb.store.version());
      assert.deepEqual(report.store, { ...report.store, kind: 'memory', state: 'reachable' });
      assert.deepEqual(report.counts, { tools: 3, routes: 2, backends: 3, assignments: 4, assignmentsWithoutBackend: 1 });
      assert.ok(!r.stdout.includes(ADMIN_TOKEN));
    });

    it('--token-file: the admin token read from a file (its newline dropped); beside --token, a usage error', async () => {
      const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sb-token-')), 'admin');
      writeFileSync(file, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
      const r = await runCli(['status', '--registry', sb.control, '--token-file', file, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((JSON.parse(r.stdout) as StatusReport).tools.some((t) => t.tool === 'web'));
      const both = await runCli(['status', '--registry', sb.control, '--token-file', file, '--token', ADMIN_TOKEN]);
      assert.equal(both.code, 2);
      assert.equal(both.stderr, "switchboard: --token and --token-file: give one of them\nsee 'switchboard --help'\n");
    });

    it('filters as the page does: --tool PATTERN, --state STATE (repeated or comma-separated), --sort, --limit', async () => {
      const args = ['status', '--registry', sb.control, '--token', ADMIN_TOKEN];
      const toolsOf = (stdout: string) => {
        const lines = stdout.split('\n');
        return [...new Set(cutColumns(lines.slice(lines.findIndex((l) => l.startsWith('TOOL'))).filter((l) => l !== '')).map((c) => c[0]))];
      };
      const discovered = await runCli([...args, '--state', 'discovered']);
      assert.equal(discovered.code, 0, discovered.stderr);
      assert.deepEqual(toolsOf(discovered.stdout), ['found']);
      assert.match(discovered.stdout, /^Matching: +1 of 3 tools \(state discovered\), sorted by name$/m);

      const glob = await runCli([...args, '--tool', 'w*', '--state', 'live,not-running']);
      assert.deepEqual(toolsOf(glob.stdout), ['web']);
      const part = await runCli([...args, '--tool', 'D', '--state', 'not running', '--state', 'discovered']);
      assert.deepEqual(toolsOf(part.stdout), ['idle', 'found'].sort());

      // Traffic through this process's proxy: the busiest first.
      for (let i = 0; i < 3; i++) await fetch(`${sb.proxyUrl}/found/`).then((r) => r.arrayBuffer());
      const busiest = await runCli([...args, '--sort', 'rps', '--limit', '1', '--json']);
      const report = JSON.parse(busiest.stdout) as StatusReport;
      assert.deepEqual(report.tools.map((t) => [t.tool, t.traffic?.requests]), [['found', 3]]);
      assert.deepEqual(report.selection, { tool: '', states: [], sort: 'rps', matched: 3, offset: 0, limit: 1 });

      const none = await runCli([...args, '--tool', 'nothing-like-it']);
      assert.match(none.stdout, /^no tool matches the filter$/m);

      const bad = await runCli([...args, '--state', 'dead']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--state: state must be one of lost, held, not_running, discovered, live/);
    });

    it('fails clearly: no token (usage, 2), a wrong token (1), no registry there (1)', async () => {
      const none = await runCli(['status', '--registry', sb.control]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--token/);

      const wrong = await runCli(['status', '--registry', sb.control, '--token', 'not-the-admin-token-0123456789abcdef']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /401 invalid_token/);
      assert.equal(wrong.stdout, '');

      const nowhere = await runCli(['status', '--registry', `http://127.0.0.1:${dead}`, '--token', ADMIN_TOKEN]);
      assert.equal(nowhere.code, 1);
      assert.match(nowhere.stderr, /cannot reach the registry at http:\/\/127\.0\.0\.1:\d+/);
    });
  });

  it('never writes a control character a registry sent into the terminal', () => {
    const report: StatusReport = {
      generatedAt: '2026-11-26T00:00:00.000Z',
      store: { kind: 'redis', state: 'reachable', dataFrom: 'store', dataAt: '2026-11-26T00:00:00.000Z' },
      table: { epoch: 'e\u001b]0;owned\u0007', version: 7 },
      snapshot: null,
      counts: { tools: 1, routes: 1, backends: 1, assignments: 0, assignmentsWithoutBackend: 0 },
      states: { lost: 0, held: 0, not_running: 0, discovered: 0, live: 1 },
      traffic: null,
      history: { sampleSeconds: 30, samples: [] },
      tools: [
        {
          tool: 'web',
          state: 'live',
          url: null,
          traffic: null,
          backends: [{ id: 'b1', url: 'http://127.0.0.1:1', source: 'registered', leaseSecondsLeft: 3, expiresAt: null, health: 'ok', clientVersion: '\u001b[2J\u009bx\r\n' }],
          assignments: [],
        },
      ],
    };
    const text = renderStatusText(report);
    assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f]/);
    assert.match(text, /\?\[2J\?x\?\?/);
    assert.match(text, /^Table version: 7 \(epoch e\?\]0;owned\?\)$/m);
  });

  it('with the store down: still prints the last known tools and says "store unreachable"', async () => {
    const redis = await new RedisServer().start();
    const store = await RedisStore.connect({ url: redis.url, keyPrefix: 'status-cli:', commandTimeoutMs: 500, logger: silentLogger() });
    const sb = await startInProcess({ proxy: false, registry: true }, store);
    const web = await startBackend('web');
    try {
      await register(sb.control, 'web', 'b1', web.url, { ttl: 120 });
      await fetch(`${sb.control}/status.json`).then((r) => r.arrayBuffer()); // the page was looked at once
      await redis.kill();
      const r = await runCli(['status', '--registry', sb.control, '--token', ADMIN_TOKEN]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Store: +redis, store unreachable: /m);
      const lines = r.stdout.split('\n');
      const rows = cutColumns(lines.slice(lines.findIndex((l) => l.startsWith('TOOL'))).filter((l) => l !== '')).map(backendColumns);
      assert.deepEqual(rows.map((c) => [c[0], c[1], c[2], c[5]]), [['web', 'b1', web.url, 'unknown']], 'a registry-only process has no passive health');
    } finally {
      await sb.stop();
      await store.close();
      await web.close();
      await redis.stop();
    }
  });
});
