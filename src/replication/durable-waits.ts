// Write-through over a durable mutation log (docs/failover.md): a write is acknowledged only once the
// log's batch holding it is durable. The log's appends share one promise per batch (group commit), so
// the waits are tracked per batch too — no closure, promise or map entry per write.
import { isUnderstudyError } from '../errors/index.js';

interface LogBatch {
  /** The promise the log returned for every append of this batch. */
  done: Promise<void>;
  first: number;
  last: number;
  /** Resolves with undefined once the batch is durable, or with the error of its failed write. */
  outcome: Promise<string | undefined>;
  /** The failed write's error (`<code>: <message>`), once it failed. */
  error?: string;
}

/** Failed batches remembered (a write looks its batch up before the batch's write can fail). */
const FAILED_KEPT = 256;

/** Which appends of a durable log are not durable yet, or failed: one entry per batch of the log. */
export class DurableWaits {
  /** Batches not yet settled, oldest first (few: one being written, one accumulating). */
  #open: LogBatch[] = [];
  /** Recent batches whose write failed, oldest first. */
  #failed: LogBatch[] = [];

  /** Records that `seq` was appended and is durable when `done` (the log's promise for it) resolves. */
  track(seq: number, done: Promise<void>): void {
    const tail = this.#open.at(-1);
    if (tail !== undefined && tail.done === done) {
      tail.last = seq;
      return;
    }
    const batch: LogBatch = { done, first: seq, last: seq, outcome: Promise.resolve(undefined) };
    batch.outcome = done.then(
      () => {
        this.#settled(batch);
        return undefined;
      },
      (err: unknown) => {
        // With its stable code (UNDERSTUDY_ERR_MUTATION_LOG_WRITE): it reaches the refused client.
        batch.error = isUnderstudyError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
        this.#settled(batch);
        this.#failed.push(batch);
        if (this.#failed.length > FAILED_KEPT) this.#failed.shift();
        return batch.error;
      },
    );
    this.#open.push(batch);
  }

  /**
   * Whether `seq` is durable: undefined when it is (or was never tracked), the error when its write
   * failed, else a promise of either.
   */
  of(seq: number): Promise<string | undefined> | string | undefined {
    for (const b of this.#open) if (seq >= b.first && seq <= b.last) return b.outcome;
    for (const b of this.#failed) if (seq >= b.first && seq <= b.last) return b.error;
    return undefined;
  }

  #settled(batch: LogBatch): void {
    const i = this.#open.indexOf(batch);
    if (i >= 0) this.#open.splice(i, 1);
  }
}
