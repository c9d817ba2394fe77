import assert from 'node:assert/strict';
import { runCli } from '../support/process';
import { startInProcess, type InProcess } from '../support/in-process';
import { startBackend, type Backend } from '../support/backend';
import { waitFor } from '../support/wait';

const ADMIN = 'test-admin-token-0123456789abcdef';

async function statusFor(sb: InProcess, userAgent: string): Promise<number> {
  const res = await fetch(`${sb.proxyUrl}/web/`, { headers: { 'user-agent': userAgent }, signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

describe('switchboard block add|list|remove', function () {
  this.timeout(60_000);
  let sb: InProcess;
  let web: Backend;

  before(async () => {
    sb = await startInProcess({ adminToken: ADMIN });
    web = await startBackend('web');
    const res = await fetch(`${sb.control}/v1/tools/web/backends/b1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: web.url }),
    });
    assert.equal(res.status, 200);
    await waitFor('web routed', async () => (await statusFor(sb, 'curl/8')) === 200);
  });
  after(async () => {
    await sb?.stop();
    await web?.close();
  });

  it('adds a ban the proxy applies, lists it, and removes it', async () => {
    const env = { SWITCHBOARD_ADMIN_TOKEN: ADMIN };
    const registry = ['--registry', sb.control];
    const added = await runCli(['block', 'add', '--id', 'bots', '--user-agent', '^BadBot/', '--tool', 'web', '--ttl', '600', '--reason', 'scraping', ...registry], env);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^bots {2}user-agent \/\^BadBot\/\/ {2}tool web {2}until \S+ {2}"scraping"\n$/);
    await waitFor('the ban applied', async () => (await statusFor(sb, 'BadBot/1')) === 403);
    assert.equal(await statusFor(sb, 'curl/8'), 200);

    const listed = await runCli(['block', 'list', '--json', ...registry], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).blocks.map((b: { id: string }) => b.id), ['bots']);

    const status = await runCli(['status', ...registry], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^Policies: +1 ban, 0 tool policies, maintenance off$/m);
    assert.match(status.stdout, /^bots +user-agent \/\^BadBot\/\/ +web +\S+ +scraping$/m);

    const unsafe = await runCli(['block', 'add', '--id', 'x', '--user-agent', '(a+)+$', ...registry], env);
    assert.equal(unsafe.code, 1);
    assert.match(unsafe.stderr, /userAgent/);

    const removed = await runCli(['block', 'remove', '--id', 'bots', ...registry], env);
    assert.equal(removed.code, 0, removed.stderr);
    await waitFor('the ban lifted', async () => (await statusFor(sb, 'BadBot/1')) === 200);
    const empty = await runCli(['block', 'list', ...registry], env);
    assert.equal(empty.stdout, '');
  });

  it('refuses a bad invocation with a usage error', async () => {
    for (const [args, message] of [
      [['block'], 'block: expected "add", "list" or "remove"'],
      [['block', 'add', '--cidr', '10.0.0.0/8'], '--id is required'],
      [['block', 'add', '--id', 'x', '--cidr', '10.0.0.0/8', '--ttl', '1h'], '--ttl must be a whole number of seconds'],
    ] as Array<[string[], string]>) {
      const r = await runCli([...args, '--registry', sb.control], { SWITCHBOARD_ADMIN_TOKEN: ADMIN });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, new RegExp(message.replace(/[.*+?^${}()|[\]\\"]/g, '\\$&')));
    }
  });
});
