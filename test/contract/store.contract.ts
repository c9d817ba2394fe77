import assert from 'node:assert/strict';
import type { Store } from '../../src/registry/store';
import { waitFor, sleep } from '../support/wait';
import type {
  Assignment,
  Backend,
  BackendSource,
  Change,
  ChangeEvent,
  RouteRecord,
  RouteSink,
  UpsertBackendInput,
  UpsertBackendResult,
} from '../../src/registry/types';

/**
 * The one behaviour every Store implementation must show. A runner calls `storeContract(name, factory)`;
 * `create()` must answer a fresh, empty store for each test. The contract closes every store it created
 * (after the test), then calls `cleanup()` when given.
 *
 * Change-feed assertions wait for delivery (bounded polling) because delivery is asynchronous everywhere;
 * "no event" is proven by ordering: a later mutation's event arrives and nothing came before it.
 */
export interface StoreFactory {
  create(): Promise<Store>;
  cleanup?(): Promise<void>;
}

export const HOST = '127.0.0.1';
/** A write no test looks at, whose event tells a subscriber that every earlier event has arrived. */
const MARKER_TOOL = 'zz-marker';
const MARKER_PORT = 5999;
export const HOST2 = '127.0.0.2';

/** Drops undefined-valued keys so stores that omit absent optionals and stores that keep them compare equal. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function byHostPort(a: Assignment, b: Assignment): number {
  if (a.host !== b.host) return a.host < b.host ? -1 : 1;
  return a.port - b.port;
}

/** A RouteSink that keeps what it is handed, and forgets it when the read starts over. */
function collectingSink(): RouteSink & { backends: RouteRecord[]; assignments: Assignment[] } {
  return {
    backends: [],
    assignments: [],
    backend(r) {
      this.backends.push(r);
    },
    assignment(a) {
      this.assignments.push(a);
    },
    restart() {
      this.backends = [];
      this.assignments = [];
    },
  };
}

function routeFields(r: RouteRecord): RouteRecord {
  return { tool: r.tool, id: r.id, url: r.url, source: r.source };
}

/** The tools named, each once: a record handed twice counts once (the contract allows it). */
function toolSet(list: { tool: string }[]): Set<string> {
  return new Set(list.map((x) => x.tool));
}

function expectedTools(prefix: string, n: number): Set<string> {
  return new Set(Array.from({ length: n }, (_, i) => `${prefix}-${i}`));
}

function okResult(r: UpsertBackendResult): Extract<UpsertBackendResult, { ok: true }> {
  assert.equal(r.ok, true, `expected ok upsert, got ${JSON.stringify(r)}`);
  return r as Extract<UpsertBackendResult, { ok: true }>;
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, function () {
    this.timeout(20000);

    let store: Store;
    let opened: Store[] = [];
    let unsubscribes: Array<() => Promise<void>> = [];
    /** A base time near the wall clock, so stores that also keep physical key TTLs do not drop test data. */
    let T: number;

    beforeEach(async () => {
      opened = [];
      unsubscribes = [];
      store = await factory.create();
      opened.push(store);
      T = Date.now();
    });

    afterEach(async () => {
      for (const u of unsubscribes) await u().catch(() => undefined);
      for (const s of opened) await s.close().catch(() => undefined);
      if (factory.cleanup) await factory.cleanup();
    });

    function input(over: Partial<UpsertBackendInput> & { tool: string; id: string; port: number }): UpsertBackendInput {
      const host = over.host ?? HOST;
      return {
        url: `http://${host}:${over.port}`,
        host,
        ttl: 30,
        source: 'registered' as BackendSource,
        now: T,
        ...over,
      };
    }

    /** Subscribes and collects every event; the subscription is torn down after the test. */
    async function collect(): Promise<{ events: ChangeEvent[]; unsubscribe: () => Promise<void> }> {
      const events: ChangeEvent[] = [];
      const unsubscribe = await store.subscribe(
        (e) => events.push(e),
        () => undefined,
      );
      unsubscribes.push(unsubscribe);
      return { events, unsubscribe };
    }

    /**
     * The events a subscriber got before a marker write, once the marker's own event has arrived: a
     * subscriber gets events in version order, so no event of the writes before it can still be on its way
     * (instead of sleeping and hoping a late one would have come by then).
     */
    async function eventsBeforeMarker(events: ChangeEvent[]): Promise<ChangeEvent[]> {
      const isMarker = (e: ChangeEvent) => e.changes.some((c) => c.kind === 'backend.upsert' && c.backend.tool === MARKER_TOOL);
      okResult(await store.upsertBackend(input({ tool: MARKER_TOOL, id: 'm1', port: MARKER_PORT, ttl: 3600 })));
      await waitFor('the marker event', () => events.some(isMarker), 3000, 5);
      return events.slice(0, events.findIndex(isMarker));
    }

    async function versionNumber(): Promise<number> {
      return (await store.version()).version;
    }

    /** Tools `${prefix}-${from}`..: one backend each, on its own port of HOST. */
    async function writeTools(prefix: string, from: number, to: number): Promise<void> {
      for (let start = from; start < to; start += 250) {
        const batch: Promise<UpsertBackendResult>[] = [];
        for (let i = start; i < Math.min(to, start + 250); i++) {
          batch.push(store.upsertBackend(input({ tool: `${prefix}-${i}`, id: 'x', port: 30000 + i })));
        }
        for (const r of await Promise.all(batch)) okResult(r);
      }
    }

    describe('backends and leases', () => {
      it('creates a backend on first heartbeat with the lease fields set', async () => {
        const r = okResult(
          await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 15, clientVersion: '1.2.3' })),
        );
        assert.equal(r.created, true);
        assert.equal(r.assignmentCreated, true);
        const expected: Backend = {
          tool: 'alpha',
          id: 'a1',
          url: `http://${HOST}:5001`,
          source: 'registered',
          registeredAt: T,
          lastHeartbeat: T,
          expiresAt: T + 15_000,
          ttl: 15,
          clientVersion: '1.2.3',
        };
        assert.deepEqual(plain(r.backend), expected);
        assert.deepEqual(plain(await store.getBackends('alpha')), [expected]);
        assert.equal(await store.backendCount(), 1);
      });

      it('renews an existing lease: keeps registeredAt, moves lastHeartbeat and expiresAt', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
        const r = okResult(
          await store.upsertBackend(
            input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 20, now: T + 4000, clientVersion: '2.0.0' }),
          ),
        );
        assert.equal(r.created, false);
        assert.equal(r.assignmentCreated, false);
        assert.equal(r.backend.registeredAt, T);
        assert.equal(r.backend.lastHeartbeat, T + 4000);
        assert.equal(r.backend.expiresAt, T + 4000 + 20_000);
        assert.equal(r.backend.ttl, 20);
        assert.equal(r.backend.clientVersion, '2.0.0');
        const [stored] = await store.getBackends('alpha');
        assert.deepEqual(plain(stored), plain(r.backend));
        assert.equal(await store.backendCount(), 1);
      });

      it('creates the assignment for host:port on first heartbeat, once', async () => {
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        assert.equal(r.assignmentCreated, true);
        assert.deepEqual(plain(await store.getAssignment(HOST, 5001)), {
          tool: 'alpha',
          host: HOST,
          port: 5001,
          createdAt: T,
        });
        // A second instance of the same tool on the same host:port reuses the assignment.
        const r2 = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5001, now: T + 1 })));
        assert.equal(r2.created, true);
        assert.equal(r2.assignmentCreated, false);
        assert.equal((await store.getAssignment(HOST, 5001))?.createdAt, T);
        assert.equal((await store.listAssignments()).length, 1);
      });

      it('uses an assignment made by allocatePort for the same tool without creating another', async () => {
        const a = await store.allocatePort('alpha', HOST, { min: 6000, max: 6010 }, T);
        assert.ok(a.ok);
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: a.assignment.port })));
        assert.equal(r.assignmentCreated, false);
        assert.equal((await store.listAssignments()).length, 1);
      });

      it('answers port_conflict when another tool holds host:port and changes nothing', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        const before = await store.snapshot();
        const r = await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5001, now: T + 1000 }));
        assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
        assert.deepEqual(await store.getBackends('beta'), []);
        assert.equal(await store.backendCount(), 1);
        assert.equal((await store.getAssignment(HOST, 5001))?.tool, 'alpha');
        const after = await store.snapshot();
        assert.equal(after.version, before.version);
        assert.deepEqual(plain(after.backends), plain(before.backends));
        assert.deepEqual(plain(after.assignments), plain(before.assignments));
      });

      it('answers port_conflict against an assignment made by allocatePort', async () => {
        const a = await store.allocatePort('alpha', HOST, { min: 6000, max: 6000 }, T);
        assert.ok(a.ok);
        const v = await versionNumber();
        const r = await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 6000 }));
        assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
        assert.equal(await store.backendCount(), 0);
        assert.equal(await versionNumber(), v);
      });

      it('refuses a url change onto a port another tool holds, keeping the old lease untouched', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5002 })));
        const v = await versionNumber();
        const r = await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5001, now: T + 5000 }));
        assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder: 'alpha' });
        const [b1] = await store.getBackends('beta');
        assert.equal(b1.url, `http://${HOST}:5002`);
        assert.equal(b1.lastHeartbeat, T);
        assert.equal(await versionNumber(), v);
      });

      it('lets only one of many concurrent tools claim one host:port', async () => {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.upsertBackend(input({ tool: `tool${i}`, id: 'x', port: 5500 }))),
        );
        const winners = results.filter((r) => r.ok);
        assert.equal(winners.length, 1);
        const holder = (await store.getAssignment(HOST, 5500))?.tool;
        assert.ok(holder);
        for (const r of results) {
          if (!r.ok) assert.deepEqual(r, { ok: false, reason: 'port_conflict', holder });
        }
        assert.equal(await store.backendCount(), 1);
      });

      it('keeps the same port on different hosts independent', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, host: HOST })));
        const r = okResult(await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5001, host: HOST2 })));
        assert.equal(r.assignmentCreated, true);
        assert.equal((await store.getAssignment(HOST2, 5001))?.tool, 'beta');
      });

      it('lets a registered backend supersede discovered ones of the same tool and url', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd2', port: 5002, source: 'discovered' })));
        const { events } = await collect();
        const v = await versionNumber();
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001, now: T + 100 })));
        assert.equal(r.created, true);
        assert.equal(r.backend.source, 'registered');
        const ids = (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`);
        assert.deepEqual(ids, ['d2:discovered', 'r1:registered']);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the supersede event', () => events.length >= 1, 3000, 5);
        assert.equal((await eventsBeforeMarker(events)).length, 1);
        const removals = events[0].changes.filter((c) => c.kind === 'backend.remove');
        assert.deepEqual(removals, [{ kind: 'backend.remove', tool: 'alpha', id: 'd1', reason: 'replaced' }]);
        const upserts = events[0].changes.filter((c) => c.kind === 'backend.upsert');
        assert.equal(upserts.length, 1);
        assert.equal((upserts[0] as Extract<Change, { kind: 'backend.upsert' }>).backend.id, 'r1');
        assert.equal(events[0].version, v + 1);
      });

      it('does not let a registered backend of one tool remove a discovered one of another tool', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' })));
        // The url is the same but the port belongs to alpha, so beta conflicts and nothing is removed.
        const r = await store.upsertBackend(input({ tool: 'beta', id: 'r1', port: 5001 }));
        assert.equal(r.ok, false);
        assert.equal((await store.getBackends('alpha')).length, 1);
      });

      it('refuses a discovered backend when a registered one of the tool has that url', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001 })));
        const v = await versionNumber();
        const r = await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered' }));
        assert.deepEqual(r, { ok: false, reason: 'registered_exists' });
        const ids = (await store.getBackends('alpha')).map((b) => b.id);
        assert.deepEqual(ids, ['r1']);
        assert.equal(await versionNumber(), v);
      });

      it('refuses a discovered upsert that would overwrite a registered backend of the same id', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        const v = await versionNumber();
        const r = await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5002, source: 'discovered' }));
        assert.deepEqual(r, { ok: false, reason: 'registered_exists' });
        const [a1] = await store.getBackends('alpha');
        assert.equal(a1.source, 'registered');
        assert.equal(a1.url, `http://${HOST}:5001`);
        assert.equal(await store.getAssignment(HOST, 5002), null);
        assert.equal(await versionNumber(), v);
      });

      it('lets a discovered backend replace a registered one of the same url whose lease lapsed, in one event', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 30 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 30 })));
        // One millisecond before the lease lapses the registration still stands.
        assert.deepEqual(
          await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, source: 'discovered', now: T + 29_999 })),
          { ok: false, reason: 'registered_exists' },
        );
        const { events } = await collect();
        const v = await versionNumber();
        const r = okResult(
          await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, ttl: 5, source: 'discovered', now: T + 30_000 })),
        );
        assert.equal(r.created, true);
        assert.equal(r.assignmentCreated, false);
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`),
          ['d1:discovered', 'r2:registered'],
        );
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the replace event', () => events.length >= 1, 3000, 5);
        assert.equal((await eventsBeforeMarker(events)).length, 1);
        assert.deepEqual(
          events[0].changes.map((c) => (c.kind === 'backend.upsert' ? `upsert ${c.backend.id}` : c.kind === 'backend.remove' ? `remove ${c.id} ${c.reason}` : c.kind)).sort(),
          ['remove r1 replaced', 'upsert d1'],
        );
        // The replaced lease is gone from the expiry index too: the sweep finds only the other lapsed one,
        // and compare-and-delete of a stale candidate for it removes nothing.
        assert.deepEqual(
          (await store.expiredLeases(T + 30_000, 10)).map((c) => c.id),
          ['r2'],
        );
        assert.deepEqual(await store.expireLeases([{ tool: 'alpha', id: 'r1', expiresAt: T + 30_000, ttl: 30 }]), []);
        // The discovered backend holds a fresh lease of its own.
        const [d1] = (await store.getBackends('alpha')).filter((b) => b.id === 'd1');
        assert.equal(d1.expiresAt, T + 35_000);
      });

      it('lets a discovered upsert take over a lapsed registered backend of the same id as a new backend', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
        const r = okResult(
          await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, source: 'discovered', now: T + 10_000 })),
        );
        assert.equal(r.created, true);
        assert.equal(r.backend.source, 'discovered');
        assert.equal(r.backend.registeredAt, T + 10_000);
        assert.equal(await store.backendCount(), 1);
      });

      it('never lets a discovered backend replace a lapsed registration of another url, or a live one', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 5 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 60 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd3', port: 5003, source: 'discovered', now: T + 10_000 })));
        assert.deepEqual(
          await store.upsertBackend(input({ tool: 'alpha', id: 'd2', port: 5002, source: 'discovered', now: T + 10_000 })),
          { ok: false, reason: 'registered_exists' },
        );
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => b.id),
          ['d3', 'r1', 'r2'],
        );
      });

      it('accepts a discovered backend whose url no registered backend has', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001 })));
        const r = okResult(
          await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5002, source: 'discovered' })),
        );
        assert.equal(r.created, true);
        assert.equal(r.backend.source, 'discovered');
        assert.equal(await store.backendCount(), 2);
      });

      it('removes a backend once: true then false', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002 })));
        assert.equal(await store.removeBackend('alpha', 'a1'), true);
        assert.deepEqual(
          (await store.getBackends('alpha')).map((b) => b.id),
          ['a2'],
        );
        assert.equal(await store.backendCount(), 1);
        const v = await versionNumber();
        assert.equal(await store.removeBackend('alpha', 'a1'), false);
        assert.equal(await store.removeBackend('nobody', 'a2'), false);
        assert.equal(await versionNumber(), v);
        assert.equal(await store.backendCount(), 1);
      });

      it('stores the instance of the newest heartbeat: another instance (or none) takes the lease over as a new registration', async () => {
        const first = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
        assert.equal(first.created, true);
        assert.equal(first.backend.instance, 'run-aaaa1');
        const v = await versionNumber();
        const renewed = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', now: T + 1000 })));
        assert.equal(renewed.created, false, 'same instance: a renewal');
        assert.equal(renewed.backend.registeredAt, T);
        const taken = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-bbbb2', now: T + 2000 })));
        assert.equal(taken.created, true, 'another instance: a new registration');
        assert.equal(taken.backend.registeredAt, T + 2000);
        assert.equal(taken.backend.instance, 'run-bbbb2');
        assert.equal((await store.getBackends('alpha'))[0].instance, 'run-bbbb2');
        const anonymous = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, now: T + 3000 })));
        assert.equal(anonymous.created, true, 'a heartbeat without an instance owns it too');
        assert.equal(plain(await store.getBackends('alpha'))[0].instance, undefined);
        assert.equal(await versionNumber(), v, 'a takeover keeps url and source: nothing a proxy routes on changed');
        assert.equal(await store.backendCount(), 1);
      });

      it('stores the restarts count of the newest heartbeat, beside clientVersion, without a version bump; a heartbeat without one clears it', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
        const v = await versionNumber();
        const three = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', restarts: 3, now: T + 1000 })));
        assert.equal(three.backend.restarts, 3);
        assert.equal(three.created, false, 'a restart keeps the lease: a renewal');
        const both = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', restarts: 4, clientVersion: '1.2.3', now: T + 2000 })));
        assert.equal(both.backend.restarts, 4);
        assert.equal(both.backend.clientVersion, '1.2.3');
        const [stored] = plain(await store.getBackends('alpha'));
        assert.equal(stored.restarts, 4);
        assert.equal(stored.clientVersion, '1.2.3');
        assert.equal((await store.snapshot()).backends[0].restarts, 4);
        assert.equal(await versionNumber(), v, 'a count tells a proxy nothing to route on');
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1', now: T + 3000 })));
        assert.equal(plain(await store.getBackends('alpha'))[0].restarts, undefined);
      });

      it('removes a backend for its owner instance only (compare-and-delete); a mismatch changes nothing and publishes nothing', async () => {
        const { events } = await collect();
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-aaaa1' })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002 })));
        await waitFor('the two upserts', () => events.length >= 2, 3000, 5);
        const v = await versionNumber();
        assert.equal(await store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'instance_mismatch');
        assert.equal(await store.removeOwnedBackend('alpha', 'a2', 'run-aaaa1'), 'instance_mismatch', 'a backend held by no instance');
        assert.equal(await store.removeOwnedBackend('alpha', 'nope', 'run-aaaa1'), 'absent');
        assert.equal(await store.removeOwnedBackend('nobody', 'a1', 'run-aaaa1'), 'absent');
        assert.equal(await versionNumber(), v);
        assert.deepEqual((await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.instance ?? '-'}`), ['a1:run-aaaa1', 'a2:-']);

        // Taken over by another run: the first run's removal no longer matches, the new owner's does.
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, instance: 'run-bbbb2', now: T + 1000 })));
        assert.equal(await store.removeOwnedBackend('alpha', 'a1', 'run-aaaa1'), 'instance_mismatch');
        assert.equal((await store.getBackends('alpha')).find((b) => b.id === 'a1')?.instance, 'run-bbbb2');
        assert.equal(await store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'removed');
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the removal event', () => events.length >= 3, 3000, 5);
        assert.deepEqual(events[2].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a1', reason: 'deregistered' }]);
        assert.equal(events[2].version, v + 1, 'the refused removals published nothing before it');
        assert.equal(await store.removeOwnedBackend('alpha', 'a1', 'run-bbbb2'), 'absent');
        // Without an instance, removal does not ask who registered (admin tooling, older clients).
        assert.equal(await store.removeBackend('alpha', 'a2'), true);
        assert.equal(await store.backendCount(), 0);
      });

      it("never loses a takeover to the previous owner's concurrent removal", async () => {
        for (let round = 0; round < 20; round++) {
          const id = `r${round}`;
          okResult(await store.upsertBackend(input({ tool: 'alpha', id, port: 5001, instance: 'run-old00' })));
          const [removal, takeover] = await Promise.all([
            store.removeOwnedBackend('alpha', id, 'run-old00'),
            store.upsertBackend(input({ tool: 'alpha', id, port: 5001, instance: 'run-new00', now: T + 1000 })),
          ]);
          okResult(takeover);
          assert.ok(removal === 'removed' || removal === 'instance_mismatch', removal);
          // Whichever ran first, the new owner's backend is what is left.
          const left = (await store.getBackends('alpha')).filter((b) => b.id === id);
          assert.deepEqual(left.map((b) => b.instance), ['run-new00'], `round ${round}: removal ${removal}`);
        }
      });

      it('answers no backends for an unknown tool', async () => {
        assert.deepEqual(await store.getBackends('nobody'), []);
        assert.equal(await store.backendCount(), 0);
      });

      it('lists expired leases oldest first, up to the limit', async () => {
        // ttl 10, 5, 20, 1 from the same now: expiresAt order is a4, a2, a1, a3.
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 10 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 5 })));
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'a3', port: 5003, ttl: 20 })));
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'a4', port: 5004, ttl: 1 })));

        assert.deepEqual(await store.expiredLeases(T, 10), []);
        assert.deepEqual(await store.expiredLeases(T + 999, 10), []);
        assert.deepEqual(plain(await store.expiredLeases(T + 10_000, 10)), [
          { tool: 'beta', id: 'a4', expiresAt: T + 1000, ttl: 1 },
          { tool: 'alpha', id: 'a2', expiresAt: T + 5000, ttl: 5 },
          { tool: 'alpha', id: 'a1', expiresAt: T + 10_000, ttl: 10 },
        ]);
        assert.deepEqual(plain(await store.expiredLeases(T + 60_000, 2)), [
          { tool: 'beta', id: 'a4', expiresAt: T + 1000, ttl: 1 },
          { tool: 'alpha', id: 'a2', expiresAt: T + 5000, ttl: 5 },
        ]);
        // Listing removes nothing.
        assert.equal(await store.backendCount(), 4);
      });

      it('moves a renewed lease out of the expired list', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, now: T + 5000 })));
        assert.deepEqual(await store.expiredLeases(T + 2000, 10), []);
        assert.deepEqual(plain(await store.expiredLeases(T + 6000, 10)), [
          { tool: 'alpha', id: 'a1', expiresAt: T + 6000, ttl: 1 },
        ]);
      });

      it('expires leases by compare-and-delete: a renewed lease survives', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a3', port: 5003, ttl: 60 })));
        const candidates = await store.expiredLeases(T + 2000, 10);
        assert.equal(candidates.length, 2);
        // a1 heartbeats between the sweep's read and its delete.
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, now: T + 1500 })));

        const { events } = await collect();
        const v = await versionNumber();
        const removed = await store.expireLeases([
          ...candidates,
          { tool: 'alpha', id: 'ghost', expiresAt: T, ttl: 1 },
        ]);
        assert.deepEqual(plain(removed), [{ tool: 'alpha', id: 'a2', expiresAt: T + 1000, ttl: 1 }]);
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => b.id),
          ['a1', 'a3'],
        );
        assert.equal(await store.backendCount(), 2);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the expiry event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].version, v + 1);
        assert.deepEqual(events[0].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a2', reason: 'expired' }]);
        // Expiring removes leases, not the port the tool owns.
        assert.equal((await store.getAssignment(HOST, 5002))?.tool, 'alpha');
      });

      it('reports every removal of a batch expiry on the feed, version stepping once per event', async () => {
        for (let i = 0; i < 5; i++) {
          okResult(await store.upsertBackend(input({ tool: 'alpha', id: `a${i}`, port: 5000 + i, ttl: 1 })));
        }
        const { events } = await collect();
        const v = await versionNumber();
        const removed = await store.expireLeases(await store.expiredLeases(T + 1000, 100));
        assert.equal(removed.length, 5);
        assert.equal(await store.backendCount(), 0);
        const vAfter = await versionNumber();
        assert.ok(vAfter > v && vAfter <= v + 5, `version ${vAfter} after ${v}`);
        await waitFor('all expiry events', () => events.length >= vAfter - v, 3000, 5);
        const expiries = await eventsBeforeMarker(events);
        assert.equal(expiries.length, vAfter - v);
        expiries.forEach((e, i) => assert.equal(e.version, v + 1 + i));
        const ids = expiries
          .flatMap((e) => e.changes)
          .map((c) => {
            assert.equal(c.kind, 'backend.remove');
            const rem = c as Extract<Change, { kind: 'backend.remove' }>;
            assert.equal(rem.reason, 'expired');
            return rem.id;
          })
          .sort();
        assert.deepEqual(ids, ['a0', 'a1', 'a2', 'a3', 'a4']);
      });

      it('expires nothing and keeps the version when no candidate matches', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        const v = await versionNumber();
        assert.deepEqual(await store.expireLeases([{ tool: 'alpha', id: 'a1', expiresAt: T + 999, ttl: 1 }]), []);
        assert.deepEqual(await store.expireLeases([]), []);
        assert.equal(await store.backendCount(), 1);
        assert.equal(await versionNumber(), v);
      });
    });

    describe('backends held by self-preservation (markHeld)', () => {
      /** The records routeSnapshot hands a proxy, by id: `id` or `id held`. */
      async function routed(): Promise<string[]> {
        const sink = collectingSink();
        await store.routeSnapshot(sink);
        return [...new Set(sink.backends.map((b) => (b.held ? `${b.id} held` : b.id)))].sort();
      }

      it('marks lapsed leases held in one routing mutation, seen by getBackends and routeSnapshot', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a3', port: 5003, ttl: 60 })));
        const candidates = await store.expiredLeases(T + 2000, 10);
        const { events } = await collect();
        const v = await versionNumber();
        const marked = await store.markHeld([...candidates, { tool: 'alpha', id: 'ghost', expiresAt: T, ttl: 1 }]);
        assert.deepEqual(plain(marked).sort(byId), [
          { tool: 'alpha', id: 'a1', expiresAt: T + 1000, ttl: 1 },
          { tool: 'alpha', id: 'a2', expiresAt: T + 1000, ttl: 1 },
        ]);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the held event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].version, v + 1);
        assert.deepEqual(
          events[0].changes.map((c) => (c.kind === 'backend.upsert' ? `upsert ${c.backend.id} held=${c.backend.held}` : c.kind)).sort(),
          ['upsert a1 held=true', 'upsert a2 held=true'],
        );
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.held ?? '-'}`),
          ['a1:true', 'a2:true', 'a3:-'],
        );
        assert.deepEqual(await routed(), ['a1 held', 'a2 held', 'a3']);
        // Held is not removed: the leases are still stored and still lapsed.
        assert.equal(await store.backendCount(), 3);
        assert.deepEqual((await store.expiredLeases(T + 2000, 10)).map((c) => c.id).sort(), ['a1', 'a2']);
        // Marking again changes nothing: no version, no event (a later mutation's event comes first).
        assert.deepEqual(await store.markHeld(candidates), []);
        assert.deepEqual(await store.markHeld([]), []);
        assert.equal(await versionNumber(), v + 1);
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5009 })));
        await waitFor('the next event', () => events.length >= 2, 3000, 5);
        assert.equal(events[1].version, v + 2);
      });

      it('clears the mark on renewal with one event; the next renewal publishes nothing', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1, instance: 'run-00001' })));
        assert.equal((await store.markHeld(await store.expiredLeases(T + 2000, 10))).length, 1);
        const { events } = await collect();
        const v = await versionNumber();
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, instance: 'run-00001', now: T + 3000 })));
        assert.equal(r.created, false, 'a renewal, not a new registration');
        assert.equal(r.backend.held, undefined);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the renewal event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].changes.length, 1);
        const ch = events[0].changes[0];
        assert.equal(ch.kind, 'backend.upsert');
        assert.equal((ch as Extract<Change, { kind: 'backend.upsert' }>).backend.held, undefined);
        assert.equal((await store.getBackends('alpha'))[0].held, undefined);
        assert.deepEqual(await routed(), ['a1']);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, instance: 'run-00001', now: T + 4000 })));
        assert.equal(await versionNumber(), v + 1, 'a plain renewal is no routing change');
        assert.deepEqual(await store.expiredLeases(T + 5000, 10), []);
      });

      it('marks by compare on expiresAt: a lease renewed after the sweep read it is not marked', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002, ttl: 1 })));
        const candidates = await store.expiredLeases(T + 2000, 10);
        assert.equal(candidates.length, 2);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 30, now: T + 1500 })));
        const v = await versionNumber();
        assert.deepEqual((await store.markHeld(candidates)).map((c) => c.id), ['a2']);
        assert.equal(await versionNumber(), v + 1);
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.held ?? '-'}`),
          ['a1:-', 'a2:true'],
        );
      });

      it('still expires a held backend by compare-and-delete', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, ttl: 1 })));
        const candidates = await store.expiredLeases(T + 2000, 10);
        await store.markHeld(candidates);
        const { events } = await collect();
        const removed = await store.expireLeases(await store.expiredLeases(T + 5000, 10));
        assert.deepEqual(plain(removed), [{ tool: 'alpha', id: 'a1', expiresAt: T + 1000, ttl: 1 }]);
        assert.equal(await store.backendCount(), 0);
        await waitFor('the expiry event', () => events.length >= 1, 3000, 5);
        assert.deepEqual(events[0].changes, [{ kind: 'backend.remove', tool: 'alpha', id: 'a1', reason: 'expired' }]);
      });

      it('lets a discovered backend replace a held registration of the same url, and carries no mark over', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r1', port: 5001, ttl: 1 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 1 })));
        await store.markHeld(await store.expiredLeases(T + 2000, 10));
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5001, ttl: 5, source: 'discovered', now: T + 2000 })));
        assert.equal(r.created, true);
        assert.equal(r.backend.held, undefined);
        // Same id: a discovery takes a held registration over as a new, live backend.
        const same = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'r2', port: 5002, ttl: 5, source: 'discovered', now: T + 2000 })));
        assert.equal(same.created, true);
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}:${b.held ?? '-'}`),
          ['d1:discovered:-', 'r2:discovered:-'],
        );
        assert.deepEqual(await routed(), ['d1', 'r2']);
      });
    });

    describe('port registry', () => {
      const range = { min: 7000, max: 7004 };

      it('allocates the lowest free port of the range', async () => {
        okResult(await store.upsertBackend(input({ tool: 'squatter', id: 's', port: 7000 })));
        const a = await store.allocatePort('alpha', HOST, range, T);
        assert.deepEqual(plain(a), {
          ok: true,
          created: true,
          assignment: { tool: 'alpha', host: HOST, port: 7001, createdAt: T },
        });
        const b = await store.allocatePort('beta', HOST, range, T + 1);
        assert.ok(b.ok);
        assert.equal(b.assignment.port, 7002);
        assert.deepEqual(plain(await store.getAssignment(HOST, 7001)), {
          tool: 'alpha',
          host: HOST,
          port: 7001,
          createdAt: T,
        });
      });

      it('answers the same assignment to the same tool on the same host', async () => {
        const a = await store.allocatePort('alpha', HOST, range, T);
        const v = await versionNumber();
        const again = await store.allocatePort('alpha', HOST, range, T + 5000);
        assert.ok(a.ok && again.ok);
        assert.equal(again.created, false);
        assert.deepEqual(plain(again.assignment), plain(a.assignment));
        assert.equal(await versionNumber(), v);
        assert.equal((await store.listAssignments()).length, 1);
      });

      it("answers the tool's existing assignment on the host even outside the asked range", async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        const a = await store.allocatePort('alpha', HOST, range, T + 1);
        assert.ok(a.ok);
        assert.equal(a.created, false);
        assert.equal(a.assignment.port, 5001);
      });

      it('allocates independently per host', async () => {
        const a = await store.allocatePort('alpha', HOST, range, T);
        const b = await store.allocatePort('beta', HOST2, range, T);
        const c = await store.allocatePort('alpha', HOST2, range, T);
        assert.ok(a.ok && b.ok && c.ok);
        assert.equal(a.assignment.port, 7000);
        assert.equal(b.assignment.port, 7000);
        assert.equal(b.assignment.host, HOST2);
        assert.equal(c.created, true);
        assert.equal(c.assignment.port, 7001);
        assert.equal(c.assignment.host, HOST2);
      });

      it('answers range_exhausted when every port is held, changing nothing', async () => {
        for (let i = 0; i < 5; i++) {
          const r = await store.allocatePort(`tool${i}`, HOST, range, T);
          assert.ok(r.ok);
          assert.equal(r.assignment.port, 7000 + i);
        }
        const v = await versionNumber();
        assert.deepEqual(await store.allocatePort('late', HOST, range, T), { ok: false, reason: 'range_exhausted' });
        assert.equal(await versionNumber(), v);
        assert.equal((await store.listAssignments()).length, 5);
        // A single-port range works too.
        const one = await store.allocatePort('late', HOST2, { min: 7003, max: 7003 }, T);
        assert.ok(one.ok);
        assert.equal(one.assignment.port, 7003);
      });

      it('never hands out an excluded port, and exhausts the range when only excluded ones are left', async () => {
        const a = await store.allocatePort('alpha', HOST, range, T, { exclude: [7000, 7002, 9999] });
        const b = await store.allocatePort('beta', HOST, range, T, { exclude: [7000, 7002] });
        assert.ok(a.ok && b.ok);
        assert.equal(a.assignment.port, 7001);
        assert.equal(b.assignment.port, 7003);
        // Exclusions bind only the call that gives them.
        const c = await store.allocatePort('gamma', HOST, range, T);
        assert.ok(c.ok);
        assert.equal(c.assignment.port, 7000);
        const v = await versionNumber();
        assert.deepEqual(await store.allocatePort('late', HOST, range, T, { exclude: [7002, 7004] }), { ok: false, reason: 'range_exhausted' });
        assert.equal(await versionNumber(), v);
        // A tool's existing assignment is answered even when its port is excluded.
        const again = await store.allocatePort('alpha', HOST, range, T, { exclude: [7001] });
        assert.ok(again.ok);
        assert.equal(again.created, false);
        assert.equal(again.assignment.port, 7001);
      });

      it('answers the preferred port when it is free and in range, otherwise the lowest free one', async () => {
        const a = await store.allocatePort('alpha', HOST, range, T, { prefer: 7003, exclude: [7000] });
        assert.ok(a.ok);
        assert.equal(a.assignment.port, 7003);
        assert.equal((await store.getAssignment(HOST, 7003))?.tool, 'alpha');
        const taken = await store.allocatePort('beta', HOST, range, T, { prefer: 7003, exclude: [7000] });
        assert.ok(taken.ok);
        assert.equal(taken.assignment.port, 7001);
        const outside = await store.allocatePort('gamma', HOST, range, T, { prefer: 7100 });
        assert.ok(outside.ok);
        assert.equal(outside.assignment.port, 7000);
      });

      it('gives 20 concurrent tools 20 distinct ports', async () => {
        const r20 = { min: 8000, max: 8019 };
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.allocatePort(`tool${i}`, HOST, r20, T)),
        );
        const ports = results.map((r) => {
          assert.ok(r.ok);
          assert.equal(r.created, true);
          return r.assignment.port;
        });
        assert.deepEqual(
          [...ports].sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => 8000 + i),
        );
        const listed = (await store.listAssignments()).sort(byHostPort);
        assert.equal(listed.length, 20);
        for (const r of results) {
          assert.ok(r.ok);
          assert.equal((await store.getAssignment(HOST, r.assignment.port))?.tool, r.assignment.tool);
        }
        assert.deepEqual(await store.allocatePort('tool20', HOST, r20, T), { ok: false, reason: 'range_exhausted' });
      });

      it('gives concurrent callers for one tool and host one assignment', async () => {
        const results = await Promise.all(
          Array.from({ length: 8 }, () => store.allocatePort('alpha', HOST, range, T)),
        );
        const ports = new Set(results.map((r) => (r.ok ? r.assignment.port : -1)));
        assert.deepEqual([...ports], [7000]);
        assert.equal(results.filter((r) => r.ok && r.created).length, 1);
        assert.equal((await store.listAssignments()).length, 1);
      });

      it('releases a port: answers it once, then null, and the port is free again', async () => {
        const a = await store.allocatePort('alpha', HOST, range, T);
        assert.ok(a.ok);
        const { events } = await collect();
        const v = await versionNumber();
        assert.deepEqual(plain(await store.releasePort(HOST, 7000)), plain(a.assignment));
        assert.equal(await store.getAssignment(HOST, 7000), null);
        assert.equal(await versionNumber(), v + 1);
        await waitFor('the release event', () => events.length >= 1, 3000, 5);
        assert.deepEqual(events[0].changes, [{ kind: 'assignment.remove', host: HOST, port: 7000, tool: 'alpha' }]);
        assert.equal(events[0].version, v + 1);

        assert.equal(await store.releasePort(HOST, 7000), null);
        assert.equal(await store.releasePort(HOST, 7999), null);
        assert.equal(await versionNumber(), v + 1);
        const b = await store.allocatePort('beta', HOST, range, T);
        assert.ok(b.ok);
        assert.equal(b.assignment.port, 7000);
      });

      it('answers null for an unknown assignment and lists all assignments', async () => {
        assert.equal(await store.getAssignment(HOST, 1234), null);
        assert.deepEqual(await store.listAssignments(), []);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        await store.allocatePort('beta', HOST2, range, T + 1);
        assert.deepEqual(plain((await store.listAssignments()).sort(byHostPort)), [
          { tool: 'alpha', host: HOST, port: 5001, createdAt: T },
          { tool: 'beta', host: HOST2, port: 7000, createdAt: T + 1 },
        ]);
      });
    });

    describe('tokens', () => {
      it('stores, reads and revokes a token by its owner only', async () => {
        const rec = { id: 'tok1', tool: 'alpha', hash: 'sha256:abc', createdAt: T };
        assert.equal(await store.getToken('tok1'), null);
        await store.putToken(rec);
        assert.deepEqual(plain(await store.getToken('tok1')), rec);

        assert.equal(await store.revokeToken('beta', 'tok1'), false);
        assert.deepEqual(plain(await store.getToken('tok1')), rec);

        assert.equal(await store.revokeToken('alpha', 'tok1'), true);
        assert.equal(await store.getToken('tok1'), null);
        assert.equal(await store.revokeToken('alpha', 'tok1'), false);
        assert.equal(await store.revokeToken('alpha', 'never'), false);
      });

      it('keeps tokens apart and lets putToken replace a record', async () => {
        await store.putToken({ id: 't1', tool: 'alpha', hash: 'h1', createdAt: T });
        await store.putToken({ id: 't2', tool: 'beta', hash: 'h2', createdAt: T });
        await store.putToken({ id: 't1', tool: 'alpha', hash: 'h1b', createdAt: T + 1 });
        assert.equal((await store.getToken('t1'))?.hash, 'h1b');
        assert.equal((await store.getToken('t2'))?.tool, 'beta');
      });

      it('does not touch the route table version', async () => {
        const v = await versionNumber();
        await store.putToken({ id: 't1', tool: 'alpha', hash: 'h1', createdAt: T });
        await store.revokeToken('alpha', 't1');
        assert.equal(await versionNumber(), v);
      });
    });

    describe('table version and snapshot', () => {
      it('keeps one epoch across calls and reports the same version in snapshot and version()', async () => {
        const v0 = await store.version();
        assert.equal(typeof v0.epoch, 'string');
        assert.ok(v0.epoch.length > 0);
        assert.ok(Number.isInteger(v0.version) && v0.version >= 0);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        const v1 = await store.version();
        const snap = await store.snapshot();
        assert.equal(v1.epoch, v0.epoch);
        assert.equal(snap.epoch, v0.epoch);
        assert.equal(snap.version, v1.version);
      });

      it('steps the version by exactly one per routing mutation and not on pure renewals', async () => {
        const v0 = await versionNumber();
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 }))); // backend + assignment
        assert.equal(await versionNumber(), v0 + 1);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, now: T + 1000, ttl: 99 })));
        assert.equal(await versionNumber(), v0 + 1, 'a renewal that keeps url and source');
        okResult(
          await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, now: T + 2000, clientVersion: 'x' })),
        );
        assert.equal(await versionNumber(), v0 + 1, 'a renewal with a new clientVersion');
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5002, now: T + 3000 }))); // url change
        assert.equal(await versionNumber(), v0 + 2);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5003, source: 'discovered' })));
        assert.equal(await versionNumber(), v0 + 3);
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5003, now: T + 1000, source: 'discovered' })));
        assert.equal(await versionNumber(), v0 + 3, 'a discovered renewal');
        // Source change of the same id: an update of that backend, not a supersede of itself.
        const promoted = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'd1', port: 5003, now: T + 2000 })));
        assert.equal(promoted.created, false);
        assert.equal(promoted.backend.source, 'registered');
        assert.equal(promoted.backend.registeredAt, T);
        assert.equal(await versionNumber(), v0 + 4);
        assert.deepEqual(
          (await store.getBackends('alpha')).sort(byId).map((b) => `${b.id}:${b.source}`),
          ['a1:registered', 'd1:registered'],
        );
        const a = await store.allocatePort('beta', HOST, { min: 9000, max: 9001 }, T);
        assert.ok(a.ok);
        assert.equal(await versionNumber(), v0 + 5);
        await store.releasePort(HOST, 9000);
        assert.equal(await versionNumber(), v0 + 6);
        assert.equal(await store.removeBackend('alpha', 'a1'), true);
        assert.equal(await versionNumber(), v0 + 7);
      });

      it('snapshots every backend and assignment at one version', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, clientVersion: 'v1' })));
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5002, source: 'discovered' })));
        await store.allocatePort('gamma', HOST2, { min: 9000, max: 9000 }, T);
        const snap = await store.snapshot();
        assert.equal(snap.version, await versionNumber());
        assert.deepEqual(plain(snap.backends.sort(byId)), [
          {
            tool: 'alpha',
            id: 'a1',
            url: `http://${HOST}:5001`,
            source: 'registered',
            registeredAt: T,
            lastHeartbeat: T,
            expiresAt: T + 30_000,
            ttl: 30,
            clientVersion: 'v1',
          },
          {
            tool: 'beta',
            id: 'b1',
            url: `http://${HOST}:5002`,
            source: 'discovered',
            registeredAt: T,
            lastHeartbeat: T,
            expiresAt: T + 30_000,
            ttl: 30,
          },
        ]);
        assert.deepEqual(plain(snap.assignments.sort(byHostPort)), [
          { tool: 'alpha', host: HOST, port: 5001, createdAt: T },
          { tool: 'beta', host: HOST, port: 5002, createdAt: T },
          { tool: 'gamma', host: HOST2, port: 9000, createdAt: T },
        ]);
      });

      it('answers an empty snapshot for an empty store', async () => {
        const snap = await store.snapshot();
        assert.deepEqual(snap.backends, []);
        assert.deepEqual(snap.assignments, []);
      });

      it('hands every backend (as its route record) and assignment of one version to a routeSnapshot sink', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, clientVersion: 'v1' })));
        okResult(await store.upsertBackend(input({ tool: 'beta', id: 'b1', port: 5002, source: 'discovered' })));
        await store.allocatePort('gamma', HOST2, { min: 9000, max: 9000 }, T);
        const sink = collectingSink();
        const v = await store.routeSnapshot(sink);
        assert.deepEqual(v, await store.version());
        assert.deepEqual(sink.backends.map(routeFields).sort(byId), [
          { tool: 'alpha', id: 'a1', url: `http://${HOST}:5001`, source: 'registered' },
          { tool: 'beta', id: 'b1', url: `http://${HOST}:5002`, source: 'discovered' },
        ]);
        assert.deepEqual(plain(sink.assignments.sort(byHostPort)), [
          { tool: 'alpha', host: HOST, port: 5001, createdAt: T },
          { tool: 'beta', host: HOST, port: 5002, createdAt: T },
          { tool: 'gamma', host: HOST2, port: 9000, createdAt: T },
        ]);
      });

      it('hands nothing to a routeSnapshot sink for an empty store', async () => {
        const sink = collectingSink();
        const v = await store.routeSnapshot(sink);
        assert.deepEqual(v, await store.version());
        assert.deepEqual(sink.backends, []);
        assert.deepEqual(sink.assignments, []);
      });

      it('hands a table of several thousand routes to a routeSnapshot sink whole', async () => {
        // More than one page of a store that reads in pages.
        const n = 2500;
        await writeTools('t', 0, n);
        const sink = collectingSink();
        const v = await store.routeSnapshot(sink);
        assert.equal(v.version, await versionNumber());
        assert.deepEqual(toolSet(sink.backends), expectedTools('t', n));
        assert.deepEqual(toolSet(sink.assignments), expectedTools('t', n));
      });

      it('answers the table of the version it reports while routes are being written', async () => {
        await writeTools('base', 0, 2500);
        const v0 = await versionNumber();
        // Each write adds one backend and its assignment: one version step. The table at version v has
        // the first v - v0 of them, and exactly those.
        const total = 400;
        let writing = true;
        const writer = (async () => {
          try {
            for (let i = 0; i < total; i++) okResult(await store.upsertBackend(input({ tool: `w-${i}`, id: 'x', port: 20000 + i })));
          } finally {
            writing = false;
          }
        })();
        let reads = 0;
        const deadline = Date.now() + 15_000;
        while ((writing || reads < 2) && reads < 30 && Date.now() < deadline) {
          const sink = collectingSink();
          const v = await store.routeSnapshot(sink);
          reads++;
          const written = v.version - v0;
          assert.ok(written >= 0 && written <= total, `version ${v.version} outside [${v0}, ${v0 + total}]`);
          const want = new Set([...expectedTools('base', 2500), ...expectedTools('w', written)]);
          assert.deepEqual(toolSet(sink.backends), want, `backends at version ${v.version}`);
          assert.deepEqual(toolSet(sink.assignments), want, `assignments at version ${v.version}`);
        }
        await writer;
      });
    });

    describe('change feed', () => {
      it('publishes one event per routing mutation, stamped with its version and carrying its changes', async () => {
        const { events } = await collect();
        const { epoch, version: v0 } = await store.version();

        const created = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        await waitFor('event 1', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].epoch, epoch);
        assert.equal(events[0].version, v0 + 1);
        const kinds = events[0].changes.map((c) => c.kind).sort();
        assert.deepEqual(kinds, ['assignment.upsert', 'backend.upsert']);
        const bu = events[0].changes.find((c) => c.kind === 'backend.upsert') as Extract<
          Change,
          { kind: 'backend.upsert' }
        >;
        assert.deepEqual(plain(bu.backend), plain(created.backend));
        const au = events[0].changes.find((c) => c.kind === 'assignment.upsert') as Extract<
          Change,
          { kind: 'assignment.upsert' }
        >;
        assert.deepEqual(plain(au.assignment), { tool: 'alpha', host: HOST, port: 5001, createdAt: T });

        // Renewal: no event. A later mutation's event arriving first proves it.
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001, now: T + 1000 })));
        // Second instance, same assignment: only a backend.upsert.
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5001 })));
        await waitFor('event 2', () => events.length >= 2, 3000, 5);
        assert.equal(events[1].version, v0 + 2);
        assert.equal(events[1].changes.length, 1);
        assert.equal(events[1].changes[0].kind, 'backend.upsert');
        assert.equal((events[1].changes[0] as Extract<Change, { kind: 'backend.upsert' }>).backend.id, 'a2');

        assert.equal(await store.removeBackend('alpha', 'a2'), true);
        await waitFor('event 3', () => events.length >= 3, 3000, 5);
        assert.equal(events[2].version, v0 + 3);
        assert.deepEqual(events[2].changes, [
          { kind: 'backend.remove', tool: 'alpha', id: 'a2', reason: 'deregistered' },
        ]);

        const a = await store.allocatePort('beta', HOST, { min: 9100, max: 9100 }, T);
        assert.ok(a.ok);
        await waitFor('event 4', () => events.length >= 4, 3000, 5);
        assert.equal(events[3].version, v0 + 4);
        assert.deepEqual(plain(events[3].changes), [
          { kind: 'assignment.upsert', assignment: { tool: 'beta', host: HOST, port: 9100, createdAt: T } },
        ]);

        // Refusals and no-ops publish nothing; the release afterwards is the next event.
        await store.upsertBackend(input({ tool: 'gamma', id: 'g', port: 9100 })); // port_conflict
        await store.allocatePort('beta', HOST, { min: 9100, max: 9100 }, T); // existing
        await store.allocatePort('late', HOST, { min: 9100, max: 9100 }, T); // exhausted
        await store.removeBackend('alpha', 'nope');
        await store.releasePort(HOST, 9100);
        await waitFor('event 5', () => events.length >= 5, 3000, 5);
        assert.equal(events[4].version, v0 + 5);
        assert.equal(events[4].changes[0].kind, 'assignment.remove');
        const five = await eventsBeforeMarker(events);
        assert.equal(five.length, 5);
        five.forEach((e) => assert.equal(e.epoch, epoch));
      });

      it('publishes a promotion from discovered to registered under one id as an upsert, not a removal', async () => {
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'x1', port: 5001, source: 'discovered' })));
        const { events } = await collect();
        const v = await versionNumber();
        const r = okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'x1', port: 5001, now: T + 10 })));
        assert.equal(r.created, false);
        assert.equal(r.assignmentCreated, false);
        await waitFor('the promotion event', () => events.length >= 1, 3000, 5);
        assert.equal(events[0].version, v + 1);
        assert.equal(events[0].changes.length, 1);
        const change = events[0].changes[0] as Extract<Change, { kind: 'backend.upsert' }>;
        assert.equal(change.kind, 'backend.upsert');
        assert.equal(change.backend.id, 'x1');
        assert.equal(change.backend.source, 'registered');
        assert.deepEqual(
          (await store.getBackends('alpha')).map((b) => `${b.id}:${b.source}`),
          ['x1:registered'],
        );
      });

      it('delivers events in version order under a burst of mutations', async () => {
        const { events } = await collect();
        const v0 = await versionNumber();
        await Promise.all(
          Array.from({ length: 25 }, (_, i) => store.upsertBackend(input({ tool: `t${i}`, id: 'x', port: 5100 + i }))),
        );
        assert.equal(await versionNumber(), v0 + 25);
        await waitFor('25 events', () => events.length >= 25, 3000, 5);
        assert.deepEqual(
          events.map((e) => e.version),
          Array.from({ length: 25 }, (_, i) => v0 + 1 + i),
        );
      });

      it('stops delivery after unsubscribe', async () => {
        const first = await collect();
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        await waitFor('first event', () => first.events.length >= 1, 3000, 5);
        await first.unsubscribe();

        const second = await collect();
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a2', port: 5002 })));
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a3', port: 5003 })));
        await waitFor('second subscriber events', () => second.events.length >= 2, 3000, 5);
        await sleep(30);
        assert.equal(first.events.length, 1);
        assert.equal(second.events.length, 2);
      });

      it('fans out to several subscribers', async () => {
        const a = await collect();
        const b = await collect();
        okResult(await store.upsertBackend(input({ tool: 'alpha', id: 'a1', port: 5001 })));
        await waitFor('both subscribers', () => a.events.length >= 1 && b.events.length >= 1, 3000, 5);
        assert.deepEqual(plain(a.events), plain(b.events));
      });
    });

    describe('locks', () => {
      it('grants a free lock, renews it for its owner and refuses others', async () => {
        assert.equal(await store.acquireLock('sweeper', 'p1', 5000), true);
        assert.equal(await store.acquireLock('sweeper', 'p1', 5000), true);
        assert.equal(await store.acquireLock('sweeper', 'p2', 5000), false);
        // Another name is another lock.
        assert.equal(await store.acquireLock('other', 'p2', 5000), true);
      });

      it('lets another owner take a lock after its ttl lapsed', async () => {
        assert.equal(await store.acquireLock('sweeper', 'p1', 100), true);
        assert.equal(await store.acquireLock('sweeper', 'p2', 100), false);
        await sleep(250);
        assert.equal(await store.acquireLock('sweeper', 'p2', 5000), true);
        assert.equal(await store.acquireLock('sweeper', 'p1', 5000), false);
      });

      it('renewal extends the ttl', async () => {
        assert.equal(await store.acquireLock('sweeper', 'p1', 300), true);
        await sleep(150);
        assert.equal(await store.acquireLock('sweeper', 'p1', 5000), true);
        await sleep(250);
        assert.equal(await store.acquireLock('sweeper', 'p2', 5000), false);
      });

      it('releases only for the owner', async () => {
        assert.equal(await store.acquireLock('sweeper', 'p1', 5000), true);
        await store.releaseLock('sweeper', 'p2');
        assert.equal(await store.acquireLock('sweeper', 'p2', 5000), false);
        await store.releaseLock('sweeper', 'p1');
        assert.equal(await store.acquireLock('sweeper', 'p2', 5000), true);
        await store.releaseLock('never-held', 'p1');
      });
    });

    describe('checkpoints and health', () => {
      it('swaps a checkpoint and answers the previous value', async () => {
        assert.equal(await store.swapCheckpoint('sweep', T), null);
        assert.equal(await store.swapCheckpoint('sweep', T + 10), T);
        assert.equal(await store.swapCheckpoint('sweep', T + 20), T + 10);
        assert.equal(await store.swapCheckpoint('other', 5), null);
      });

      it('answers ping with true', async () => {
        assert.equal(await store.ping(), true);
      });

      it('names its kind', () => {
        assert.ok(store.kind === 'memory' || store.kind === 'redis');
      });
    });
  });
}
