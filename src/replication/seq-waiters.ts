// Waiters for a seq to reach a state (released by the sequencer, applied by an echo), each with a
// deadline, under one timer for all of them: a write-through write costs no timer, closure or map entry
// of its own beyond its waiter. Used by Sequencer (sequencer.ts) and EchoReplicator (echo-replicator.ts).

interface SeqWaiter {
  seq: number;
  resolve: (reached: boolean) => void;
  /** performance.now() past which it gives up. */
  deadline: number;
  /** Resolved already (reached, given up, or settled at close). */
  done: boolean;
  /** Clears the waiter's own timer (a deadline earlier than the queue's last). */
  cancel?: () => void;
}

/**
 * Waiters by seq, resolved `true` by {@link settle} or `false` at their deadline. Deadlines that come in
 * the order of the calls (one timeout for all: a service's) share one timer; a shorter timeout than an
 * earlier waiter's gets a timer of its own.
 */
export class SeqWaiters {
  readonly #bySeq = new Map<number, SeqWaiter[]>();
  /** Waiters in deadline order, from `#head` on (the ones before it are past). */
  #deadlines: SeqWaiter[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  /** @param onTimeout called with a waiter's seq just before it resolves false at its deadline */
  constructor(private readonly onTimeout?: (seq: number) => void) {}

  /** Resolves true once {@link settle}d for `seq`, false after `timeoutMs` (or at {@link settleAll}). */
  wait(seq: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const w: SeqWaiter = { seq, resolve, deadline: performance.now() + timeoutMs, done: false };
      const list = this.#bySeq.get(seq);
      if (list) list.push(w);
      else this.#bySeq.set(seq, [w]);
      const last = this.#deadlines.at(-1);
      if (last !== undefined && w.deadline < last.deadline) {
        const timer = setTimeout(() => this.#timeOut(w), timeoutMs);
        w.cancel = () => clearTimeout(timer);
        return;
      }
      this.#deadlines.push(w);
      this.#timer ??= setTimeout(() => this.#expire(), timeoutMs);
    });
  }

  /** Resolves every waiter of `seq` with `value`. */
  settle(seq: number, value = true): void {
    const list = this.#bySeq.get(seq);
    if (list === undefined) return;
    this.#bySeq.delete(seq);
    for (const w of list) this.#finish(w, value);
  }

  /** Resolves every waiter with `value` and stops the timer (closing). */
  settleAll(value: boolean): void {
    for (const list of this.#bySeq.values()) for (const w of list) this.#finish(w, value);
    this.#bySeq.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#deadlines = [];
    this.#head = 0;
  }

  #finish(w: SeqWaiter, value: boolean): void {
    if (w.done) return;
    w.done = true;
    w.cancel?.();
    w.resolve(value);
  }

  /** A waiter past its deadline: out of its seq's list, then resolved false. */
  #timeOut(w: SeqWaiter): void {
    if (w.done) return;
    const list = this.#bySeq.get(w.seq);
    const i = list ? list.indexOf(w) : -1;
    if (list && i >= 0) {
      if (list.length === 1) this.#bySeq.delete(w.seq);
      else list.splice(i, 1);
    }
    this.onTimeout?.(w.seq);
    this.#finish(w, false);
  }

  /** Gives up on the waiters past their deadline, drops the resolved ones, then re-arms the timer. */
  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const ds = this.#deadlines;
    while (this.#head < ds.length) {
      const w = ds[this.#head] as SeqWaiter;
      if (!w.done && w.deadline > now) break;
      this.#head++;
      this.#timeOut(w);
    }
    if (this.#head > 1024 && this.#head * 2 > ds.length) {
      this.#deadlines = ds.slice(this.#head);
      this.#head = 0;
    }
    const next = this.#deadlines[this.#head];
    if (next) this.#timer = setTimeout(() => this.#expire(), Math.max(1, next.deadline - now));
  }
}
