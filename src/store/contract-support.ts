import { expect } from 'vitest';
import { isUnderstudyError, type ErrorCodeValue } from '../errors/index.js';
import type { StateStore, Unwatch, WatchEvent, WatchOptions } from './state-store.js';

/**
 * What an implementation hands the contract suite: a fresh, empty store state per test, and a way to
 * let lease time pass.
 */
export interface StateStoreFixture {
  /** Opens a new client over this fixture's state (every call sees the same data; called several times per test). */
  connect(): Promise<StateStore>;
  /** Lets `ms` of lease time pass: advance an injected clock, or sleep for real where that is impossible (etcd). */
  advanceTime(ms: number): Promise<void>;
  /** TTL the lease tests grant; must be one the implementation accepts and expires reliably after. */
  leaseTtlMs: number;
  /** Runs of the property test against the in-memory model (a networked store may ask for fewer). @default 60 */
  modelRuns?: number;
  /** Removes the state; called once after each test, after every client is closed. */
  destroy(): Promise<void>;
}

/** Per-test context of the contract suite. */
export interface ContractContext {
  fixture: StateStoreFixture;
  /** The first client, opened before the test. */
  store: StateStore;
  /** Opens another client over the same state (closed after the test). */
  connect(): Promise<StateStore>;
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets pending microtasks and timers run, so that events that would be delivered are. */
export async function settle(ms = 30): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** A watch that collects its events. */
export interface Collector {
  events: WatchEvent[];
  errors: Error[];
  unwatch: Unwatch;
  /** Waits until at least `n` events arrived. */
  waitForCount(n: number): Promise<WatchEvent[]>;
}

/** Starts a watch on `prefix` that records every event. */
export async function collect(
  store: StateStore,
  prefix: string,
  options: WatchOptions = {},
): Promise<Collector> {
  const events: WatchEvent[] = [];
  const errors: Error[] = [];
  const unwatch = await store.watch(prefix, (e) => events.push(e), {
    ...options,
    onError: (err) => errors.push(err),
  });
  return {
    events,
    errors,
    unwatch,
    async waitForCount(n) {
      await waitFor(() => events.length >= n, `${n} watch events on '${prefix}' (have ${events.length})`);
      return events;
    },
  };
}

/** Asserts that `promise` rejects with an UnderstudyError of `code`. */
export async function expectCode(promise: Promise<unknown>, code: ErrorCodeValue): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  expect(error, `expected a rejection with ${code}`).toBeDefined();
  expect(isUnderstudyError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

/** The event list reduced to comparable tuples. */
export function summarize(events: readonly WatchEvent[]): string[] {
  return events.map((e) => `${e.type} ${e.key}${e.record ? '=' + e.record.value : ''}`);
}
