import assert from 'node:assert/strict';
import { probe } from '../../src/discovery/probe';
import { ProbeGate } from '../../src/discovery/probe-gate';
import { startRawBackend } from '../proxy/helpers';
import { toolServer } from './helpers';
import { waitFor } from '../support/wait';
import { deadPort } from '../support/backend';

describe('discovery probe', () => {
  it('a listening port answers a TCP probe, which sends nothing', async () => {
    const t = await toolServer('alpha');
    try {
      assert.deepEqual(await probe({ host: '127.0.0.1', port: t.port }, { budgetMs: 1000, healthPath: null }), { ok: true });
      await waitFor('the probe connection to close', async () => t.silent === 1);
      assert.equal(t.served + t.healthChecks, 0);
    } finally {
      await t.close();
    }
  });

  it('a port nobody listens on is refused', async () => {
    const r = await probe({ host: '127.0.0.1', port: await deadPort() }, { budgetMs: 1000, healthPath: null });
    assert.deepEqual(r, { ok: false, reason: 'ECONNREFUSED' });
  });

  it('with a health path, the status decides: 2xx and 3xx are up, 5xx is not', async () => {
    const t = await toolServer('alpha', { healthPath: '/up' });
    try {
      const opts = { budgetMs: 1000, healthPath: '/up' };
      assert.deepEqual(await probe({ host: '127.0.0.1', port: t.port }, opts), { ok: true });
      t.healthStatus = 302;
      assert.deepEqual(await probe({ host: '127.0.0.1', port: t.port }, opts), { ok: true });
      t.healthStatus = 503;
      assert.deepEqual(await probe({ host: '127.0.0.1', port: t.port }, opts), { ok: false, reason: 'status 503' });
      assert.equal(t.healthChecks, 3);
      assert.equal(t.served, 0);
    } finally {
      await t.close();
    }
  });

  it('something that is not HTTP, or never answers, fails the health probe within the budget', async () => {
    const garbage = await startRawBackend((s) => s.end('SSH-2.0-OpenSSH\r\n'));
    const silent = await startRawBackend(() => undefined);
    try {
      assert.deepEqual(await probe({ host: '127.0.0.1', port: garbage.port }, { budgetMs: 1000, healthPath: '/' }), { ok: false, reason: 'not an HTTP answer' });
      assert.deepEqual(await probe({ host: '127.0.0.1', port: silent.port }, { budgetMs: 150, healthPath: '/' }), { ok: false, reason: 'timeout' });
      // Without a health path, accepting the connection is the answer.
      assert.deepEqual(await probe({ host: '127.0.0.1', port: silent.port }, { budgetMs: 1000, healthPath: null }), { ok: true });
    } finally {
      await garbage.close();
      await silent.close();
    }
  });

  it('a connection closed before any answer is a failure', async () => {
    const hangup = await startRawBackend((s) => s.destroy());
    try {
      const r = await probe({ host: '127.0.0.1', port: hangup.port }, { budgetMs: 1000, healthPath: '/' });
      assert.equal(r.ok, false);
    } finally {
      await hangup.close();
    }
  });
});

describe('ProbeGate', () => {
  it('concurrent checks of one key share one probe; other keys get their own', async () => {
    let runs = 0;
    let release!: () => void;
    const gate = new ProbeGate<string>(async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
      return { ok: true };
    }, 0);
    const all = Promise.all(Array.from({ length: 50 }, () => gate.check('a', 'a')));
    assert.equal(runs, 1);
    const releaseA = release;
    const other = gate.check('b', 'b');
    assert.equal(runs, 2);
    releaseA();
    release();
    const results = await all;
    assert.equal(results.length, 50);
    assert.ok(results.every((r) => r.ok));
    assert.equal((await other).ok, true);
    assert.equal(gate.probes, 2);
  });

  it('remembers an answer for its window, then probes again', async () => {
    let now = 1000;
    let runs = 0;
    const gate = new ProbeGate<string>(async () => {
      runs++;
      return { ok: false, reason: 'ECONNREFUSED' };
    }, 2000, () => now);
    await gate.check('a', 'a');
    now += 1999;
    for (let i = 0; i < 10; i++) assert.equal((await gate.check('a', 'a')).ok, false);
    assert.equal(runs, 1);
    now += 1;
    await gate.check('a', 'a');
    assert.equal(runs, 2);
    gate.forget('a');
    await gate.check('a', 'a');
    assert.equal(runs, 3);
  });

  it('a probe that throws is a failed probe, not a rejected check', async () => {
    const gate = new ProbeGate<string>(async () => {
      throw new Error('boom');
    }, 0);
    assert.deepEqual(await gate.check('a', 'a'), { ok: false, reason: 'boom' });
  });
});

