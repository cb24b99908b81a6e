import type { StateStore } from '../store/index.js';
import type { ControlDecision, DecisionOutcome, DecisionStatus } from './records.js';

const PREFIX = 'events/';
const KEY_DIGITS = 12;
/** Store key of the decision counter: the highest decision number handed out to any writer. */
export const DECISION_COUNTER_KEY = 'counters/decisions';

/** Options of the decision log. */
export interface DecisionLogOptions {
  store: StateStore;
  /** Decisions kept in the store; older ones are pruned. @default 5000 */
  retain?: number;
  /** Clock, ms since the epoch. @default Date.now */
  now?: () => number;
  /**
   * ControlDecision numbers reserved from the store's counter at a time (by compare-and-set); a new block is
   * reserved when half of the current one is used.
   * @default 64
   */
  block?: number;
  /**
   * Called when a decision could not be written to the store (the log goes on with the next one).
   * @default a line on stderr
   */
  onWriteError?: (error: Error, decision: ControlDecision) => void;
}

/** Resolved {@link DecisionLogOptions}. */
interface ResolvedDecisionLogOptions {
  retain: number;
  now: () => number;
  block: number;
  onWriteError: (error: Error, decision: ControlDecision) => void;
}

function resolveOptions(options: DecisionLogOptions): ResolvedDecisionLogOptions {
  return {
    retain: options.retain ?? 5000,
    now: options.now ?? Date.now,
    block: Math.max(2, options.block ?? 64),
    onWriteError:
      options.onWriteError ??
      ((err, d) =>
        process.stderr.write(`understudy: decision ${d.seq} (${d.kind}) not stored: ${err.message}\n`)),
  };
}

/**
 * Every action and observation of the control loop, recorded with its inputs in the store under
 * `events/<seq>` (so it survives a restart of the control process) and delivered to live listeners.
 *
 * ControlDecision numbers come from the store: blocks of them are reserved by compare-and-set on
 * {@link DECISION_COUNTER_KEY}, so two control processes on one store never hand out the same number.
 * A decision that cannot be written is reported (`onWriteError`, counted in {@link failedWrites}) and
 * never stops the later ones.
 */
export class DecisionLog {
  /** The last number handed out, and the last one of the reserved block. */
  #seq = 0;
  #limit = 0;
  #reserving: Promise<void> | undefined;
  #failedWrites = 0;
  #listeners = new Set<(d: ControlDecision) => void>();
  readonly #options: ResolvedDecisionLogOptions;
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: StateStore,
    options: DecisionLogOptions,
  ) {
    this.#options = resolveOptions(options);
  }

  static async create(options: DecisionLogOptions): Promise<DecisionLog> {
    const log = new DecisionLog(options.store, options);
    await log.#reserve();
    return log;
  }

  /** Decisions (or settlements) that could not be written to the store since start. */
  get failedWrites(): number {
    return this.#failedWrites;
  }

  /**
   * Reserves the next block of numbers: the counter moves from what it holds (or, for a store written
   * before the counter existed, the newest stored decision) by `block`, by compare-and-set, retried on
   * conflict. Numbers already handed out past the old block (see {@link record}) are skipped.
   */
  async #reserve(): Promise<void> {
    for (;;) {
      const counter = await this.store.get(DECISION_COUNTER_KEY);
      let from = counter ? Number(counter.value) : 0;
      if (!counter) {
        const last = (await this.store.list(PREFIX)).at(-1);
        from = last ? Number(last.key.slice(PREFIX.length)) : 0;
      }
      const start = Math.max(from, this.#seq);
      const limit = start + this.#options.block;
      const written = await this.store.compareAndSet(DECISION_COUNTER_KEY, String(limit), {
        expectedRevision: counter?.revision ?? 0,
      });
      if (!written) continue;
      // The numbers between the old block and this one went to other writers.
      if (this.#seq < start) this.#seq = start;
      this.#limit = limit;
      return;
    }
  }

  /** Starts reserving the next block when half of this one is used. */
  #reserveAhead(): void {
    if (this.#reserving || this.#limit - this.#seq > this.#options.block / 2) return;
    this.#reserving = this.#reserve()
      .catch((err: unknown) => {
        process.stderr.write(`understudy: could not reserve decision numbers: ${(err as Error).message}\n`);
      })
      .finally(() => {
        this.#reserving = undefined;
      });
  }

  /**
   * Records a decision; returns it with its sequence number and time. Writes are ordered. (If the
   * reserved block ran out before the next reservation came back, numbering continues past it and the
   * next reservation starts after the numbers used.)
   */
  record(decision: Omit<ControlDecision, 'seq' | 'at'> & { at?: number }): ControlDecision {
    const full: ControlDecision = { ...decision, seq: ++this.#seq, at: decision.at ?? this.#options.now() };
    this.#reserveAhead();
    this.#write(full, async (key) => {
      await this.store.put(key, JSON.stringify(full));
      if (full.seq % 100 === 0) await this.#prune();
    });
    for (const l of this.#listeners) l(full);
    return full;
  }

  /** Sets the outcome of an earlier decision (e.g. `ok`, or `failed` with the error, after executing it). */
  settle(decision: ControlDecision, status: DecisionStatus, detail?: string): void {
    decision.outcome = detail === undefined ? { status } : { status, detail };
    this.#write(decision, (key) => this.store.put(key, JSON.stringify(decision)));
    for (const l of this.#listeners) l(decision);
  }

  /** Queues one write; a failure is reported and counted, and the writes after it go on. */
  #write(decision: ControlDecision, write: (key: string) => Promise<unknown>): void {
    const key = PREFIX + String(decision.seq).padStart(KEY_DIGITS, '0');
    this.#writes = this.#writes
      .then(() => write(key))
      .catch((err: unknown) => {
        this.#failedWrites++;
        this.#options.onWriteError(err as Error, decision);
      });
  }

  /** Decisions with `seq > after`, oldest first, at most `limit`, optionally of one service. */
  async list(options: { after?: number; limit?: number; service?: string } = {}): Promise<ControlDecision[]> {
    await this.flush();
    const records = await this.store.list(PREFIX);
    const after = options.after ?? 0;
    const out: ControlDecision[] = [];
    for (const r of records) {
      const d = JSON.parse(r.value) as ControlDecision;
      d.outcome = readOutcome(d.outcome);
      if (d.seq <= after || (options.service !== undefined && d.service !== options.service)) continue;
      out.push(d);
    }
    return options.limit === undefined ? out : out.slice(-options.limit);
  }

  /** Calls `listener` for every new or settled decision; returns the unsubscribe function. */
  subscribe(listener: (d: ControlDecision) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Resolves once every recorded decision is in the store. */
  async flush(): Promise<void> {
    await this.#writes;
    await this.#reserving;
  }

  async #prune(): Promise<void> {
    const cutoff = this.#seq - this.#options.retain;
    if (cutoff <= 0) return;
    for (const r of await this.store.list(PREFIX)) {
      if (Number(r.key.slice(PREFIX.length)) > cutoff) break;
      await this.store.delete(r.key);
    }
  }
}

/**
 * A stored outcome as a {@link DecisionOutcome}: decisions written before outcomes were tagged hold a
 * string such as `ok: pid 12` or `recorded`.
 */
export function readOutcome(stored: DecisionOutcome | string): DecisionOutcome {
  if (typeof stored !== 'string') return stored;
  const m = /^(pending|ok|failed|refused|recorded|skipped)(?::\s*(.*))?$/s.exec(stored);
  if (!m) return { status: 'recorded', detail: stored };
  const status = m[1] as DecisionStatus;
  return m[2] === undefined ? { status } : { status, detail: m[2] };
}

/** Records that a piece of background work failed, as an `error` decision (it never throws). */
export function recordError(decisions: Pick<DecisionLog, 'record'>, where: string, err: unknown): void {
  decisions.record({
    kind: 'error',
    service: '',
    what: `${where} failed`,
    why: (err as Error).message,
    inputs: {},
    outcome: { status: 'recorded' },
  });
}
