import assert from 'node:assert/strict';
import type { Store } from '../../src/registry/store';
import { waitFor } from '../support/wait';
import type {
  Assignment,
  BackendSource,
  ChangeEvent,
  PolicyRecord,
  RouteRecord,
  RouteSink,
  UpsertBackendInput,
  UpsertBackendResult,
} from '../../src/registry/types';

/**
 * What every file of the store contract shares: the store each case runs against, the hooks that open and
 * close it, and the helpers the cases write and read it with. The contract's files each take the one
 * StoreContext that storeContract (store.contract.ts) makes per runner.
 *
 * Change-feed assertions wait for delivery (bounded polling) because delivery is asynchronous everywhere;
 * "no event" is proven by ordering: a later mutation's event arrives and nothing came before it.
 */

/** `create()` must answer a fresh, empty store for each test; `cleanup()`, when given, runs after it closed. */
export interface StoreFactory {
  create(): Promise<Store>;
  cleanup?(): Promise<void>;
}

export const HOST = '127.0.0.1';
export const HOST2 = '127.0.0.2';
/** A write no test looks at, whose event tells a subscriber that every earlier event has arrived. */
const MARKER_TOOL = 'zz-marker';
const MARKER_PORT = 5999;

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

export function okResult(r: UpsertBackendResult): Extract<UpsertBackendResult, { ok: true }> {
  assert.equal(r.ok, true, `expected ok upsert, got ${JSON.stringify(r)}`);
  return r as Extract<UpsertBackendResult, { ok: true }>;
}

/** A RouteSink that keeps what it is handed, and forgets it when the read starts over. */
export function collectingSink(): RouteSink & { backends: RouteRecord[]; assignments: Assignment[]; policies: PolicyRecord[] } {
  return {
    backends: [],
    assignments: [],
    policies: [],
    backend(r) {
      this.backends.push(r);
    },
    assignment(a) {
      this.assignments.push(a);
    },
    policy(p) {
      this.policies.push(p);
    },
    restart() {
      this.backends = [];
      this.assignments = [];
      this.policies = [];
    },
  };
}

export interface Subscription {
  events: ChangeEvent[];
  unsubscribe: () => Promise<void>;
}

/** The store of the running case and what the cases write and read it with. */
export class StoreContext {
  /** A fresh, empty store, opened before each case and closed after it. */
  store!: Store;
  /** A base time near the wall clock, so stores that also keep physical key TTLs do not drop test data. */
  T = 0;
  private opened: Store | undefined;
  private unsubscribes: Array<() => Promise<void>> = [];

  /** `name` is the runner's name for the store (memory, redis). */
  constructor(readonly name: string) {}

  async open(factory: StoreFactory): Promise<void> {
    this.unsubscribes = [];
    this.opened = undefined;
    this.store = await factory.create();
    this.opened = this.store;
    this.T = Date.now();
  }

  async close(factory: StoreFactory): Promise<void> {
    for (const u of this.unsubscribes) await u().catch(() => undefined);
    await this.opened?.close().catch(() => undefined);
    if (factory.cleanup) await factory.cleanup();
  }

  /** A heartbeat of a registered backend on HOST, at T with ttl 30, its url made of host and port. */
  input(over: Partial<UpsertBackendInput> & { tool: string; id: string; port: number }): UpsertBackendInput {
    const host = over.host ?? HOST;
    return {
      url: `http://${host}:${over.port}`,
      host,
      ttl: 30,
      source: 'registered' as BackendSource,
      now: this.T,
      ...over,
    };
  }

  /** Subscribes and collects every event; the subscription is torn down after the case. */
  async collect(): Promise<Subscription> {
    const events: ChangeEvent[] = [];
    const unsubscribe = await this.store.subscribe(
      (e) => events.push(e),
      () => undefined,
    );
    this.unsubscribes.push(unsubscribe);
    return { events, unsubscribe };
  }

  /**
   * The events a subscriber got before a marker write, once the marker's own event has arrived: a
   * subscriber gets events in version order, so no event of the writes before it can still be on its way
   * (instead of sleeping and hoping a late one would have come by then).
   */
  async eventsBeforeMarker(events: ChangeEvent[]): Promise<ChangeEvent[]> {
    const isMarker = (e: ChangeEvent) => e.changes.some((c) => c.kind === 'backend.upsert' && c.backend.tool === MARKER_TOOL);
    okResult(await this.store.upsertBackend(this.input({ tool: MARKER_TOOL, id: 'm1', port: MARKER_PORT, ttl: 3600 })));
    await waitFor('the marker event', () => events.some(isMarker), 3000, 5);
    return events.slice(0, events.findIndex(isMarker));
  }

  async versionNumber(): Promise<number> {
    return (await this.store.version()).version;
  }

  /** Tools `${prefix}-${from}`..: one backend each, on its own port of HOST. */
  async writeTools(prefix: string, from: number, to: number): Promise<void> {
    for (let start = from; start < to; start += 250) {
      const batch: Promise<UpsertBackendResult>[] = [];
      for (let i = start; i < Math.min(to, start + 250); i++) {
        batch.push(this.store.upsertBackend(this.input({ tool: `${prefix}-${i}`, id: 'x', port: 30000 + i })));
      }
      for (const r of await Promise.all(batch)) okResult(r);
    }
  }
}

/** A StoreContext whose store is opened before and closed after each case of the enclosing describe. */
export function storeContext(name: string, factory: StoreFactory): StoreContext {
  const ctx = new StoreContext(name);
  beforeEach(() => ctx.open(factory));
  afterEach(() => ctx.close(factory));
  return ctx;
}
