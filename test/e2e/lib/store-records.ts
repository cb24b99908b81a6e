// What the e2e tests of the distributed mode read back from the store (etcd) the control plane writes:
// the instance records and the decisions.
import type { StateStore } from '../../../src/store/index.js';

/** An instance record as stored under `instances/` (the fields the tests read). */
export interface StoredInstance {
  id: string;
  role: string;
  phase: string;
  host: string;
  stateDir: string;
  epoch?: number;
  handle?: { pid: number };
}

/** A decision as stored under `events/` (the fields the tests read). */
export interface StoredDecision {
  seq: number;
  kind: string;
  at: number;
  what: string;
  why: string;
  instance?: string;
  inputs: Record<string, unknown>;
  outcome: { status: string };
}

/** Every instance record. */
export async function storedInstances(store: StateStore): Promise<StoredInstance[]> {
  return (await store.list('instances/')).map((r) => JSON.parse(r.value) as StoredInstance);
}

/** The running instance of a role (`primary`, `echo`), if any. */
export async function runningInstance(store: StateStore, role: string): Promise<StoredInstance | undefined> {
  return (await storedInstances(store)).find((r) => r.role === role && r.phase === 'running');
}

/** The decisions taken at or after `since` (ms since the epoch), in store order. */
export async function storedDecisions(store: StateStore, since = 0): Promise<StoredDecision[]> {
  return (await store.list('events/'))
    .map((r) => JSON.parse(r.value) as StoredDecision)
    .filter((d) => d.at >= since);
}
