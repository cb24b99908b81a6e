/** What holds a key of a {@link KeyedWorkQueue}: a label for errors and decisions (e.g. `promotion`). */
export type WorkLabel = string;

interface Entry {
  label: WorkLabel;
  done: Promise<void>;
}

/**
 * One queue of work per key (control keys it by service): work on one key runs one item at a time, in
 * the order it was queued; work on different keys runs concurrently. It replaces the per-operation busy
 * flags (`#inProgress`, `#held`): a caller that must not wait asks {@link tryRun}, one that may wait asks
 * {@link run}, and anyone can ask whether a key is {@link busy} and with what.
 */
export class KeyedWorkQueue {
  /** The last queued item of each key (its `done` settles when every item before it has run too). */
  readonly #tail = new Map<string, Entry>();
  /** What runs now on each key. */
  readonly #running = new Map<string, WorkLabel>();
  /** Items queued or running per key. */
  readonly #depth = new Map<string, number>();
  /** Items queued or running per key and label. */
  readonly #labels = new Map<string, number>();

  /** Whether work on `key` is running or queued. */
  busy(key: string): boolean {
    return (this.#depth.get(key) ?? 0) > 0;
  }

  /** Whether an item labelled `label` is running or queued on `key`. */
  has(key: string, label: WorkLabel): boolean {
    return (this.#labels.get(`${key}\0${label}`) ?? 0) > 0;
  }

  /** The label of the work running on `key` now, if any. */
  holder(key: string): WorkLabel | undefined {
    return this.#running.get(key);
  }

  /**
   * Queues `work` on `key` and resolves (or rejects) with its result once it has run, after everything
   * queued on the key before it. A failure of one item does not stop the next.
   */
  run<T>(key: string, label: WorkLabel, work: () => Promise<T>): Promise<T> {
    const before = this.#tail.get(key)?.done ?? Promise.resolve();
    const labelKey = `${key}\0${label}`;
    this.#depth.set(key, (this.#depth.get(key) ?? 0) + 1);
    this.#labels.set(labelKey, (this.#labels.get(labelKey) ?? 0) + 1);
    const entry: Entry = { label, done: Promise.resolve() };
    // The bookkeeping is undone before the caller sees the result: once `run` settles, `busy` is current.
    const result = before.then(async () => {
      this.#running.set(key, label);
      try {
        return await work();
      } finally {
        this.#running.delete(key);
        this.#release(key, labelKey, entry);
      }
    });
    entry.done = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tail.set(key, entry);
    return result;
  }

  #release(key: string, labelKey: string, entry: Entry): void {
    const depth = (this.#depth.get(key) ?? 1) - 1;
    if (depth > 0) this.#depth.set(key, depth);
    else this.#depth.delete(key);
    const labelled = (this.#labels.get(labelKey) ?? 1) - 1;
    if (labelled > 0) this.#labels.set(labelKey, labelled);
    else this.#labels.delete(labelKey);
    if (this.#tail.get(key) === entry) this.#tail.delete(key);
  }

  /** Runs `work` on `key` if nothing is running or queued there; else returns undefined and runs nothing. */
  tryRun<T>(key: string, label: WorkLabel, work: () => Promise<T>): Promise<T> | undefined {
    if (this.busy(key)) return undefined;
    return this.run(key, label, work);
  }
}
