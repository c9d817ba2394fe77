import assert from 'node:assert/strict';
import { parseTarget } from '../../src/table/backend-target';
import { createRouteBackend } from '../../src/table/route-backend';
import { RouteTable } from '../../src/table/route-table';
import type { Backend, ChangeEvent } from '../../src/registry/types';
import { assignment, backend, snapshot } from './helpers';

function ev(version: number, changes: ChangeEvent['changes'], epoch = 'e1'): ChangeEvent {
  return { epoch, version, changes };
}

describe('RouteTable', () => {
  it('empty(): no routes, epoch "" and version 0', () => {
    const t = RouteTable.empty();
    assert.equal(t.epoch, '');
    assert.equal(t.version, 0);
    assert.equal(t.routeCount, 0);
    assert.equal(t.backendCount, 0);
    assert.equal(t.assignmentCount, 0);
    assert.equal(t.lookup('x'), undefined);
    assert.deepEqual([...t.tools()], []);
  });

  it('fromSnapshot groups backends and assignments by tool, with pre-parsed targets', () => {
    const t = RouteTable.fromSnapshot(
      snapshot(
        [backend('a', 'a1', 'http://127.0.0.1:20001'), backend('a', 'a2', 'http://127.0.0.1:20002'), backend('b', 'b1', 'https://[::1]:8443')],
        [assignment('a', 20001), assignment('c', 20005)],
        7,
      ),
    );
    assert.equal(t.epoch, 'e1');
    assert.equal(t.version, 7);
    assert.equal(t.routeCount, 2, 'c has an assignment but no backend: not a route');
    assert.equal(t.backendCount, 3);
    assert.equal(t.assignmentCount, 2);
    const a = t.lookup('a');
    assert.ok(a);
    assert.deepEqual(a.backends.map((b) => b.id), ['a1', 'a2']);
    assert.equal(typeof a.backends[0].target, 'object');
    assert.deepEqual({ ...a.backends[0].target }, { protocol: 'http:', hostname: '127.0.0.1', port: 20001, origin: 'http://127.0.0.1:20001' });
    assert.deepEqual({ ...t.lookup('b')!.backends[0].target }, { protocol: 'https:', hostname: '::1', port: 8443, origin: 'https://[::1]:8443' });
    assert.equal(t.lookup('c')!.backends.length, 0);
    assert.equal(t.lookup('c')!.assignments.length, 1);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.backends) && Object.isFrozen(a.backends[0]) && Object.isFrozen(t));
  });

  it('skips backends whose url cannot be routed, keeping the rest', () => {
    const t = RouteTable.fromSnapshot(
      snapshot([backend('a', 'bad', 'not a url'), backend('a', 'ftp', 'ftp://127.0.0.1:21'), backend('a', 'ok', 'http://127.0.0.1:1')]),
    );
    assert.deepEqual(t.lookup('a')!.backends.map((b) => b.id), ['ok']);
    assert.equal(t.backendCount, 1);
  });

  it('parseTarget agrees with the WHATWG URL parser, fast path or not', () => {
    const reference = (url: string) => {
      try {
        const u = new URL(url);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
        const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
        // URL keeps an IPv6 hostname's brackets: what an origin needs.
        return { protocol: u.protocol, hostname: u.hostname.replace(/^\[|\]$/g, ''), port, origin: `${u.protocol}//${u.hostname}:${port}` };
      } catch {
        return null;
      }
    };
    const urls = [
      'http://127.0.0.1:20001',
      'http://127.0.0.1:20001/',
      'https://10.1.2.3:8443',
      'http://tool-host.example.org:8080',
      'http://LOCALHOST:8080',
      'http://0x7f.1:8080',
      'http://127.000.0.1:8080',
      'http://127.0.0.1:080',
      'http://127.0.0.1:80',
      'https://h:443',
      'http://127.0.0.1:99999',
      'http://127.0.0.1:0',
      'http://[::1]:8080',
      'http://[::ffff:127.0.0.1]:1',
      'http://256.0.0.1:1',
      'http://1.2.3:1',
      'http://host.123:1',
      'http://user@host:1',
      'http://host:1/path',
    ];
    for (const url of urls) {
      const got = parseTarget(url);
      assert.deepEqual(got ? { ...got } : null, reference(url), url);
    }
  });

  it('a snapshot listing a backend twice keeps the last, in place, also for large tools', () => {
    const many = Array.from({ length: 20 }, (_, i) => backend('a', `a${i}`, `http://127.0.0.1:${20000 + i}`));
    const t = RouteTable.fromSnapshot(
      snapshot(
        [...many, backend('a', 'a15', 'http://127.0.0.1:29999'), backend('b', 'b1', 'http://127.0.0.1:1'), backend('b', 'b1', 'http://127.0.0.1:2')],
        [assignment('b', 1), assignment('b', 1)],
      ),
    );
    assert.equal(t.lookup('a')!.backends.length, 20);
    assert.equal(t.lookup('a')!.backends[15].target.port, 29999);
    assert.deepEqual(t.lookup('b')!.backends.map((b) => b.target.port), [2]);
    assert.equal(t.assignmentCount, 1);
    assert.equal(t.backendCount, 21);
  });

  it('parseTarget fills in default ports and rejects non-http urls', () => {
    assert.equal(parseTarget('http://h')!.port, 80);
    assert.equal(parseTarget('https://h')!.port, 443);
    assert.equal(parseTarget('mailto:x@y'), null);
    assert.equal(createRouteBackend({ id: 'x', url: '::', source: 'registered' }), null);
  });

  describe('withChanges', () => {
    const base = RouteTable.fromSnapshot(
      snapshot(
        [backend('a', 'a1', 'http://127.0.0.1:20001'), backend('a', 'a2', 'http://127.0.0.1:20002'), backend('b', 'b1', 'http://127.0.0.1:20003')],
        [assignment('a', 20001), assignment('b', 20003)],
        10,
      ),
    );

    it('answers a new table and leaves the old one as it was', () => {
      const next = base.withChanges([ev(11, [{ kind: 'backend.remove', tool: 'a', id: 'a1', reason: 'expired' }])]);
      assert.notEqual(next, base);
      assert.deepEqual(next.lookup('a')!.backends.map((b) => b.id), ['a2']);
      assert.deepEqual(base.lookup('a')!.backends.map((b) => b.id), ['a1', 'a2']);
      assert.equal(base.version, 10);
      assert.equal(next.version, 11);
      assert.equal(next.backendCount, 2);
    });

    it('shares untouched tools and parsed backends (no re-parse)', () => {
      const next = base.withChanges([ev(11, [{ kind: 'backend.upsert', backend: backend('a', 'a3', 'http://127.0.0.1:20004') }])]);
      assert.equal(next.lookup('b'), base.lookup('b'), 'untouched tool keeps its Route object');
      assert.notEqual(next.lookup('a'), base.lookup('a'));
      assert.equal(next.lookup('a')!.backends[0], base.lookup('a')!.backends[0], 'unchanged backend object reused');
      assert.deepEqual(next.lookup('a')!.backends.map((b) => b.id), ['a1', 'a2', 'a3']);
    });

    it('keeps the parsed object on a renewal and re-parses only a changed url, in place', () => {
      const renewed = base.withChanges([ev(11, [{ kind: 'backend.upsert', backend: backend('a', 'a1', 'http://127.0.0.1:20001') }])]);
      assert.equal(renewed.lookup('a')!.backends[0], base.lookup('a')!.backends[0]);
      const moved = base.withChanges([ev(11, [{ kind: 'backend.upsert', backend: backend('a', 'a1', 'http://127.0.0.1:29999') }])]);
      assert.deepEqual(moved.lookup('a')!.backends.map((b) => [b.id, b.target.port]), [
        ['a1', 29999],
        ['a2', 20002],
      ]);
    });

    it('applies assignments and drops a tool left with nothing', () => {
      const next = base.withChanges([
        ev(11, [{ kind: 'backend.remove', tool: 'b', id: 'b1', reason: 'deregistered' }]),
        ev(12, [{ kind: 'assignment.upsert', assignment: assignment('c', 20010) }]),
      ]);
      assert.equal(next.version, 12);
      assert.equal(next.lookup('b')!.backends.length, 0, 'b still holds its port: known, not running');
      assert.equal(next.routeCount, 1, 'only a has a backend');
      assert.equal(next.lookup('c')!.assignments.length, 1);
      const gone = next.withChanges([ev(13, [{ kind: 'assignment.remove', tool: 'b', host: '127.0.0.1', port: 20003 }])]);
      assert.equal(gone.lookup('b'), undefined);
      assert.equal(gone.assignmentCount, 2);
      assert.equal(gone.backendCount, 2);
    });

    it('holderOf answers the tool holding host:port in any spelling, and follows assignment changes', () => {
      const t = RouteTable.fromSnapshot(
        snapshot([backend('a', 'a1', 'http://127.0.0.1:20001')], [assignment('a', 20001), assignment('d', 20007, '::1'), assignment('d', 20007, '10.0.0.9')]),
      );
      assert.equal(t.holderOf('127.0.0.1', 20001), 'a');
      assert.equal(t.holderOf('::ffff:127.0.0.1', 20001), 'a', 'an IPv4-mapped address is the IPv4 address');
      assert.equal(t.holderOf('0:0:0:0:0:0:0:1', 20007), 'd');
      assert.equal(t.holderOf('10.0.0.9', 20007), 'd', 'a tool with several assignments (a full Route, not a compact entry)');
      assert.equal(t.holderOf('127.0.0.2', 20001), undefined, 'another address, same port');
      assert.equal(t.holderOf('127.0.0.1', 20002), undefined, 'same address, another port');
      // Asked once already: a change to backends alone keeps the answers, one to assignments changes them.
      const renewed = t.withChanges([ev(2, [{ kind: 'backend.upsert', backend: backend('a', 'a2', 'http://127.0.0.1:20003') }])]);
      assert.equal(renewed.holderOf('127.0.0.1', 20001), 'a');
      const moved = renewed.withChanges([
        ev(3, [{ kind: 'assignment.remove', tool: 'a', host: '127.0.0.1', port: 20001 }]),
        ev(4, [{ kind: 'assignment.upsert', assignment: assignment('e', 20001) }]),
      ]);
      assert.equal(moved.holderOf('127.0.0.1', 20001), 'e');
      assert.equal(renewed.holderOf('127.0.0.1', 20001), 'a', 'the older table answers as it was');
    });

    it('takes epoch and version from the last event; no events answers the same table', () => {
      assert.equal(base.withChanges([]), base);
      const next = base.withChanges([ev(1, [], 'e2')]);
      assert.equal(next.epoch, 'e2');
      assert.equal(next.version, 1);
    });
  });

  it('builds 100,000 backends and updates one without touching the others', () => {
    const backends: Backend[] = [];
    for (let i = 0; i < 100_000; i++) backends.push(backend(`t${i % 20_000}`, `i${i}`, `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${20000 + (i % 10000)}`));
    const t = RouteTable.fromSnapshot(snapshot(backends));
    assert.equal(t.backendCount, 100_000);
    assert.equal(t.routeCount, 20_000);
    const next = t.withChanges([ev(2, [{ kind: 'backend.remove', tool: 't5', id: 'i5', reason: 'expired' }])]);
    assert.equal(next.backendCount, 99_999);
    assert.equal(next.lookup('t6'), t.lookup('t6'));
    assert.equal(next.lookup('t5')!.backends[0], t.lookup('t5')!.backends[1]);
  });
});
