import assert from 'node:assert/strict';
import { RouteTable, parseTarget } from '../../src/proxy/route-table';
import { assignment } from './helpers';

describe('RouteTable.builder (a table built as a store reads it)', () => {
  it('builds the same routes as fromSnapshot, frozen, with the version it is given', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 'a', id: 'a1', url: 'http://127.0.0.1:5001', source: 'registered' });
    b.backend({ tool: 'b', id: 'b1', url: 'http://127.0.0.2:5002', source: 'discovered' });
    b.assignment(assignment('a', 5001));
    b.assignment(assignment('c', 9000, '127.0.0.3'));
    const t = b.build({ epoch: 'e1', version: 7 });
    assert.equal(t.epoch, 'e1');
    assert.equal(t.version, 7);
    assert.equal(t.routeCount, 2);
    assert.equal(t.backendCount, 2);
    assert.equal(t.assignmentCount, 2);
    const a = t.lookup('a')!;
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.backends) && Object.isFrozen(a.assignments) && Object.isFrozen(a.assignments[0]));
    assert.deepEqual(a.backends.map((x) => `${x.id} ${x.url} ${x.source}`), ['a1 http://127.0.0.1:5001 registered']);
    assert.deepEqual({ ...a.assignments[0] }, { tool: 'a', host: '127.0.0.1', port: 5001 });
    assert.equal(t.lookup('b')!.backends[0].source, 'discovered');
    assert.deepEqual(t.lookup('b')!.assignments, []);
    assert.deepEqual(t.lookup('c')!.backends, []);
    assert.equal(t.lookup('c')!.assignments[0].port, 9000);
  });

  it('forgets everything received before restart()', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 'old', id: 'x', url: 'http://127.0.0.1:5001', source: 'registered' });
    b.assignment(assignment('old', 5001));
    b.restart();
    b.backend({ tool: 'new', id: 'y', url: 'http://127.0.0.1:5002', source: 'registered' });
    const t = b.build({ epoch: 'e1', version: 2 });
    assert.equal(t.lookup('old'), undefined);
    assert.equal(t.routeCount, 1);
    assert.equal(t.assignmentCount, 0);
  });

  it('keeps the last of a record received twice, in place, and skips unroutable URLs', () => {
    const b = RouteTable.builder();
    for (let i = 0; i < 12; i++) b.backend({ tool: 't', id: `i${i}`, url: `http://127.0.0.1:${6000 + i}`, source: 'registered' });
    b.backend({ tool: 't', id: 'i3', url: 'http://127.0.0.1:7003', source: 'registered' });
    b.backend({ tool: 't', id: 'bad', url: 'ftp://127.0.0.1:21', source: 'registered' });
    b.assignment(assignment('t', 6000));
    b.assignment(assignment('t', 6000));
    const t = b.build({ epoch: 'e1', version: 1 });
    const r = t.lookup('t')!;
    assert.equal(r.backends.length, 12);
    assert.equal(r.backends[3].url, 'http://127.0.0.1:7003');
    assert.equal(r.assignments.length, 1);
  });

  it('answers hasBackend by tool and id, or by tool and url', () => {
    const b = RouteTable.builder();
    b.backend({ tool: 't', id: 'a', url: 'http://127.0.0.1:5001', source: 'registered' });
    assert.equal(b.hasBackend('t', 'a', 'http://127.0.0.1:9'), true);
    assert.equal(b.hasBackend('t', 'z', 'http://127.0.0.1:5001'), true);
    assert.equal(b.hasBackend('t', 'z', 'http://127.0.0.1:9'), false);
    assert.equal(b.hasBackend('other', 'a', 'http://127.0.0.1:5001'), false);
  });

  it("parses a backend's target once, when it is first read, and keeps it", () => {
    const b = RouteTable.builder();
    for (const [i, url] of ['http://127.0.0.1:5001', 'http://127.0.0.1:5002/', 'https://svc.example:8443', 'http://[::1]:80'].entries()) {
      b.backend({ tool: `t${i}`, id: 'a', url, source: 'registered' });
    }
    const t = b.build({ epoch: 'e', version: 1 });
    for (const [i, url] of ['http://127.0.0.1:5001', 'http://127.0.0.1:5002/', 'https://svc.example:8443', 'http://[::1]:80'].entries()) {
      const backend = t.lookup(`t${i}`)!.backends[0];
      assert.ok(Object.isFrozen(backend), url);
      // Not an own property: nothing of the target is held until a request goes to the backend.
      assert.deepEqual(Object.keys(backend).sort(), ['id', 'source', 'url'], url);
      const target = backend.target;
      assert.deepEqual({ ...target }, { ...parseTarget(url)! }, url);
      assert.ok(Object.isFrozen(target), url);
      assert.equal(backend.target, target, `${url}: the same object on every read`);
    }
    assert.deepEqual({ ...t.lookup('t3')!.backends[0].target }, { protocol: 'http:', hostname: '::1', port: 80, origin: 'http://[::1]:80' });
  });
});
