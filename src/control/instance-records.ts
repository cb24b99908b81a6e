import { isDeepStrictEqual } from 'node:util';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { StateStore, StoreRecord, Unwatch, WatchEvent } from '../store/index.js';
import {
  clearPendingEvents,
  pendingEvents,
  setPendingEvents,
  transition,
  type InstanceEvent,
  type RefusalReporter,
} from './instance-transition.js';
import type { InstanceRecord } from './records.js';

/** Store key prefix of instance records (`instances/<id>`). */
export const INSTANCE_PREFIX = 'instances/';

/** Options of {@link InstanceRecords.create}. */
export interface InstanceRecordsOptions {
  store: StateStore;
  /** Receives transitions refused while a conflicting write is decided again. */
  report: RefusalReporter;
  /**
   * Called when the watch delivers a change this process did not write (another control process, or an
   * operator): the cache already holds the new record (undefined: it was deleted).
   * @default nothing
   */
  onForeignChange?: (id: string, rec: InstanceRecord | undefined) => void;
  /** Called when the watch ends abnormally (e.g. compacted history); the cache is then no longer live. @default nothing */
  onWatchError?: (err: Error) => void;
  /**
   * How many times a write refused by compare-and-set is re-read, decided again and retried before
   * it is given up (and reported through the rejected promise).
   * @default 8
   */
  maxAttempts?: number;
}

/** What {@link InstanceRecords.save} did. */
export interface SaveResult {
  /** The record is in the store as the cache holds it. */
  written: boolean;
  /** Compare-and-sets refused on the way (another writer got there first); each was re-read and redone. */
  conflicts: number;
}

/** One record as last read from or written to the store. */
interface Known {
  revision: number;
  /** The stored value, parsed: the base of a three-way merge when a write is refused. */
  base: InstanceRecord;
  /** The stored value as written (to recognise the watch echoing this process's own writes). */
  value: string;
}

/**
 * The control plane's view of `instances/`: a cache of the store, never written behind it. It is filled
 * by a list at start and kept current by a watch from that list's revision; a record is written only by
 * compare-and-set on the revision it was read at. When the write is refused, the record is read again and
 * this process's change is decided again on the fresh copy — its fields over the other writer's, its role
 * and phase events replayed through {@link transition} (a refused one is reported and not applied) — and
 * written with the new revision.
 *
 * The cache hands out live objects (the rest of control holds references to them); writes to one
 * record are serialised, so concurrent saves of one record never race each other.
 */
export class InstanceRecords {
  readonly #store: StateStore;
  readonly #options: Required<Omit<InstanceRecordsOptions, 'store'>>;
  readonly #cache = new Map<string, InstanceRecord>();
  readonly #known = new Map<string, Known>();
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Values being written by this process, per record (their watch events are not foreign). */
  readonly #inFlight = new Map<string, string>();
  #unwatch: Unwatch | undefined;
  #conflicts = 0;

  private constructor(options: InstanceRecordsOptions) {
    this.#store = options.store;
    this.#options = {
      report: options.report,
      onForeignChange: options.onForeignChange ?? (() => undefined),
      onWatchError: options.onWatchError ?? (() => undefined),
      maxAttempts: options.maxAttempts ?? 8,
    };
  }

  /** Lists the records in the store and watches them from the revision of that list. */
  static async create(options: InstanceRecordsOptions): Promise<InstanceRecords> {
    const records = new InstanceRecords(options);
    const snapshot = await options.store.snapshot(INSTANCE_PREFIX);
    for (const r of snapshot.records) {
      const rec = records.#learn(r);
      records.#cache.set(rec.id, rec);
    }
    records.#unwatch = await options.store.watch(INSTANCE_PREFIX, (e) => records.#onWatch(e), {
      fromRevision: snapshot.revision,
      onError: (err) => records.#options.onWatchError(err),
    });
    return records;
  }

  /** Compare-and-sets refused so far (each was re-read and decided again). */
  get conflicts(): number {
    return this.#conflicts;
  }

  /** The cached (live) record, or undefined. */
  get(id: string): InstanceRecord | undefined {
    return this.#cache.get(id);
  }

  /** Every cached record, in insertion order. */
  values(): IterableIterator<InstanceRecord> {
    return this.#cache.values();
  }

  /** Adds a new record to the cache; it reaches the store with its first {@link save} (created, revision 0). */
  add(rec: InstanceRecord): void {
    this.#cache.set(rec.id, rec);
  }

  /**
   * Writes the record as the cache holds it, by compare-and-set on the revision last seen. A refused
   * write is re-read, decided again and retried (at most `maxAttempts` times; then it rejects with the
   * store's conflict). Writes of one record run one after another.
   */
  save(rec: InstanceRecord): Promise<SaveResult> {
    const prior = this.#chains.get(rec.id) ?? Promise.resolve();
    const next = prior.catch(() => undefined).then(() => this.#write(rec));
    this.#chains.set(rec.id, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.#chains.get(rec.id) === next) this.#chains.delete(rec.id);
      });
    return next;
  }

  /** Resolves once every write started so far has finished. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
  }

  /** Stops the watch. Idempotent. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  async #write(rec: InstanceRecord): Promise<SaveResult> {
    const key = INSTANCE_PREFIX + rec.id;
    let conflicts = 0;
    for (let attempt = 1; ; attempt++) {
      const known = this.#known.get(rec.id);
      const events = pendingEvents(rec).length;
      const value = JSON.stringify(rec);
      const mine = JSON.parse(value) as InstanceRecord;
      if (known && known.value === value) {
        clearPendingEvents(rec, events);
        return { written: true, conflicts };
      }
      this.#inFlight.set(rec.id, value);
      const stored = await this.#store
        .compareAndSet(key, value, { expectedRevision: known?.revision ?? 0 })
        .finally(() => this.#inFlight.delete(rec.id));
      if (stored) {
        this.#known.set(rec.id, { revision: stored.revision, base: mine, value });
        clearPendingEvents(rec, events);
        return { written: true, conflicts };
      }
      conflicts++;
      this.#conflicts++;
      const fresh = await this.#store.get(key);
      if (!fresh) {
        // Deleted by another writer: this process does not bring it back behind its back.
        this.#cache.delete(rec.id);
        this.#known.delete(rec.id);
        clearPendingEvents(rec, events);
        return { written: false, conflicts };
      }
      const replay = pendingEvents(rec);
      const { merged, applied } = this.#merge(
        known?.base,
        mine,
        JSON.parse(fresh.value) as InstanceRecord,
        replay.slice(0, events),
      );
      // The fresh record is the new base; the merged one is what this process wants now, with the
      // events that still applied pending on it (and any applied since the write began).
      this.#known.set(rec.id, {
        revision: fresh.revision,
        base: JSON.parse(fresh.value) as InstanceRecord,
        value: fresh.value,
      });
      setPendingEvents(rec, [...applied, ...replay.slice(events)]);
      assignChanged(rec, mine, merged);
      if (attempt >= this.#options.maxAttempts)
        throw new UnderstudyError(
          ErrorCode.StoreConflict,
          `instance record ${rec.id} was changed by another writer ${conflicts} times in a row; not written`,
        );
    }
  }

  /**
   * Three-way merge: the fields this process changed since `base` win over `fresh`; the role and phase
   * start from `fresh` and the `events` are replayed on them through the transition table (a refused one
   * is reported and dropped). Returns the merged record and the events that applied.
   */
  #merge(
    base: InstanceRecord | undefined,
    mine: InstanceRecord,
    fresh: InstanceRecord,
    events: readonly InstanceEvent[],
  ): { merged: InstanceRecord; applied: InstanceEvent[] } {
    let merged: InstanceRecord = { ...fresh };
    const target = merged as unknown as Record<string, unknown>;
    const ours = mine as unknown as Record<string, unknown>;
    const before = (base ?? {}) as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ours), ...Object.keys(before)])) {
      if (k === 'role' || k === 'phase' || isDeepStrictEqual(ours[k], before[k])) continue;
      if (ours[k] === undefined) delete target[k];
      else target[k] = ours[k];
    }
    const applied: InstanceEvent[] = [];
    for (const event of events) {
      const result = transition(merged, event);
      if (!result.ok) {
        this.#options.report(result.refusal);
        continue;
      }
      merged = result.record;
      applied.push(event);
    }
    return { merged, applied };
  }

  #learn(r: StoreRecord): InstanceRecord {
    const rec = JSON.parse(r.value) as InstanceRecord;
    this.#known.set(rec.id, { revision: r.revision, base: JSON.parse(r.value), value: r.value });
    return rec;
  }

  #onWatch(e: WatchEvent): void {
    const id = e.key.slice(INSTANCE_PREFIX.length);
    if (e.type === 'delete') {
      if (!this.#cache.has(id)) return;
      this.#cache.delete(id);
      this.#known.delete(id);
      this.#options.onForeignChange(id, undefined);
      return;
    }
    const r = e.record;
    if (!r) return;
    const known = this.#known.get(id);
    if (this.#inFlight.get(id) === r.value || (known && r.revision <= known.revision)) return;
    if (known?.value === r.value) {
      known.revision = r.revision;
      return;
    }
    const live = this.#cache.get(id);
    if (live && this.#chains.has(id)) return; // a write of ours is under way: it merges with this one
    const base = known?.base;
    const fresh = this.#learn(r);
    if (!live) {
      this.#cache.set(id, fresh);
      this.#options.onForeignChange(id, fresh);
      return;
    }
    // Changes of ours not yet written are decided again on the new record, as for a refused write.
    const mine = JSON.parse(JSON.stringify(live)) as InstanceRecord;
    const { merged, applied } = this.#merge(base, mine, fresh, pendingEvents(live));
    setPendingEvents(live, applied);
    assignChanged(live, mine, merged);
    this.#options.onForeignChange(id, live);
  }
}

function changedKeys(a: InstanceRecord, b: InstanceRecord): Set<string> {
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  const out = new Set<string>();
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)]))
    if (!isDeepStrictEqual(x[k], y[k])) out.add(k);
  return out;
}

/**
 * Puts into the live record what the merge changed relative to the snapshot the write started from,
 * leaving alone any field changed in the live record meanwhile (by code running during the write).
 */
function assignChanged(live: InstanceRecord, snapshot: InstanceRecord, merged: InstanceRecord): void {
  const target = live as unknown as Record<string, unknown>;
  const from = snapshot as unknown as Record<string, unknown>;
  const to = merged as unknown as Record<string, unknown>;
  for (const k of changedKeys(snapshot, merged)) {
    if (!isDeepStrictEqual(target[k], from[k])) continue;
    if (to[k] === undefined) delete target[k];
    else target[k] = to[k];
  }
}
