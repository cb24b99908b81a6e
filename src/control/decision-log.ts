import type { StateStore } from '../store/index.js';
import type { Decision } from './records.js';

const PREFIX = 'events/';
const KEY_DIGITS = 12;

/** Options of the decision log. */
export interface DecisionLogOptions {
  store: StateStore;
  /** Decisions kept in the store; older ones are pruned. @default 5000 */
  retain?: number;
  /** Clock, ms since the epoch. @default Date.now */
  now?: () => number;
}

/**
 * Every action and observation of the control loop, recorded with its inputs in the store under
 * `events/<seq>` (so it survives a restart of the control process) and delivered to live listeners.
 */
export class DecisionLog {
  #seq = 0;
  #listeners = new Set<(d: Decision) => void>();
  readonly #retain: number;
  readonly #now: () => number;
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: StateStore,
    options: DecisionLogOptions,
  ) {
    this.#retain = options.retain ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  static async create(options: DecisionLogOptions): Promise<DecisionLog> {
    const log = new DecisionLog(options.store, options);
    const existing = await options.store.list(PREFIX);
    const last = existing.at(-1);
    log.#seq = last ? Number(last.key.slice(PREFIX.length)) : 0;
    return log;
  }

  /** Records a decision; returns it with its sequence number and time. Writes are ordered. */
  record(decision: Omit<Decision, 'seq' | 'at'> & { at?: number }): Decision {
    const full: Decision = { ...decision, seq: ++this.#seq, at: decision.at ?? this.#now() };
    const key = PREFIX + String(full.seq).padStart(KEY_DIGITS, '0');
    this.#writes = this.#writes.then(async () => {
      await this.store.put(key, JSON.stringify(full));
      if (full.seq % 100 === 0) await this.#prune();
    });
    for (const l of this.#listeners) l(full);
    return full;
  }

  /** Sets the outcome of an earlier decision (e.g. `ok` or `failed: …` after executing it). */
  settle(decision: Decision, outcome: string): void {
    decision.outcome = outcome;
    const key = PREFIX + String(decision.seq).padStart(KEY_DIGITS, '0');
    this.#writes = this.#writes.then(() => this.store.put(key, JSON.stringify(decision)));
    for (const l of this.#listeners) l(decision);
  }

  /** Decisions with `seq > after`, oldest first, at most `limit`, optionally of one service. */
  async list(options: { after?: number; limit?: number; service?: string } = {}): Promise<Decision[]> {
    await this.flush();
    const records = await this.store.list(PREFIX);
    const after = options.after ?? 0;
    const out: Decision[] = [];
    for (const r of records) {
      const d = JSON.parse(r.value) as Decision;
      if (d.seq <= after || (options.service !== undefined && d.service !== options.service)) continue;
      out.push(d);
    }
    return options.limit === undefined ? out : out.slice(-options.limit);
  }

  /** Calls `listener` for every new or settled decision; returns the unsubscribe function. */
  subscribe(listener: (d: Decision) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Resolves once every recorded decision is in the store. */
  async flush(): Promise<void> {
    await this.#writes;
  }

  async #prune(): Promise<void> {
    const cutoff = this.#seq - this.#retain;
    if (cutoff <= 0) return;
    for (const r of await this.store.list(PREFIX)) {
      if (Number(r.key.slice(PREFIX.length)) > cutoff) break;
      await this.store.delete(r.key);
    }
  }
}
