/** Pause counters, as returned by {@link Router.stats}. */
export interface PauseStats {
  paused: boolean;
  /** Mutating requests held right now. */
  held: number;
  /** Mutating requests forwarded and not yet answered. */
  inFlightMutations: number;
  /** Held requests answered 503 because the queue was full or the pause lasted past `maxPauseMs`. */
  rejected: number;
}

interface Held {
  readonly go: () => void;
  readonly reject: () => void;
  readonly at: number;
}

/**
 * Holds new mutating requests while paused (planned switchover: pause, wait for the echo, switch,
 * resume) in a bounded FIFO queue, and tracks mutations in flight so a pause can wait for them.
 */
export class MutationGate {
  #paused = false;
  #queue: Held[] = [];
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  rejected = 0;

  constructor(private readonly opts: { maxHeld: number; maxPauseMs: number }) {}

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops forwarding new mutating requests; resolves once the mutations already forwarded are answered. */
  pause(): Promise<void> {
    this.#paused = true;
    if (this.#timer === undefined && this.opts.maxPauseMs > 0) {
      this.#timer = setInterval(() => this.#expire(), Math.max(10, Math.min(250, this.opts.maxPauseMs / 4)));
      this.#timer.unref();
    }
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Forwards the held requests in arrival order and lets new ones through. */
  resume(): void {
    this.#paused = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const q = this.#queue;
    this.#queue = [];
    for (const h of q) h.go();
  }

  /** Runs `go` now, or holds it while paused (`reject` if the queue is full or the hold expires). */
  admit(go: () => void, reject: () => void): void {
    if (!this.#paused) {
      go();
      return;
    }
    if (this.#queue.length >= this.opts.maxHeld) {
      this.rejected++;
      reject();
      return;
    }
    this.#queue.push({ go, reject, at: performance.now() });
  }

  /** Removes a held request whose client went away. */
  forget(go: () => void): void {
    this.#queue = this.#queue.filter((h) => h.go !== go);
  }

  #expire(): void {
    const limit = performance.now() - this.opts.maxPauseMs;
    while (this.#queue.length > 0 && (this.#queue[0] as Held).at <= limit) {
      const h = this.#queue.shift() as Held;
      this.rejected++;
      h.reject();
    }
  }

  began(): void {
    this.#inFlight++;
  }

  ended(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const r of idle) r();
    }
  }

  stats(): PauseStats {
    return {
      paused: this.#paused,
      held: this.#queue.length,
      inFlightMutations: this.#inFlight,
      rejected: this.rejected,
    };
  }

  /** Rejects everything held (router closing). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const q = this.#queue;
    this.#queue = [];
    for (const h of q) h.reject();
    for (const r of this.#idle) r();
    this.#idle = [];
  }
}
