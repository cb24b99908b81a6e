// @ts-check
// The instance side of Understudy's pipelined order (docs/failover.md, "Pipelined order: the
// instance contract"): a plain ES module with no dependencies, for a Node service to import.
//
// The router numbers every mutation of a service (`x-understudy-seq: n`, within a stream named by
// `x-understudy-stream`) and sends many at once. An instance must consume every number exactly once and
// in order: request n runs only once n-1 has been consumed (applied, rejected, or skipped), a number
// seen again is a duplicate (answered, never applied twice), and a request stamped with an epoch older
// than one already seen is refused (fencing). `SeqGate` does the bookkeeping; the service keeps its
// position durable (the stream and the last consumed seq, with each record it writes) and passes it
// back to the constructor after a restart.

/** Header names of the contract. */
export const SEQ_HEADERS = Object.freeze({
  seq: 'x-understudy-seq',
  stream: 'x-understudy-stream',
  epoch: 'x-understudy-epoch',
  /** `1`: consume the seq without applying anything (a skip entry). */
  skip: 'x-understudy-skip',
  /** On the answer to a skip: `skip` when this request consumed the seq, else how it was consumed earlier. */
  outcome: 'x-understudy-outcome',
});

/**
 * How a seq was consumed: the HTTP status the service answered it with, `'skip'` for a skip entry, or
 * `'unknown'` when it was consumed too long ago (or before a restart) to be remembered.
 * @typedef {number | 'skip' | 'unknown'} SeqOutcome
 */

/**
 * The sequencing headers of one request.
 * @typedef {{ seq: number, stream: string, epoch: number, skip: boolean }} Sequenced
 */

/**
 * What {@link SeqGate.enter} decided: `run` — it is this request's turn, apply it and call
 * {@link SeqGate.complete}; `duplicate` — the seq was consumed already (answer, do not apply);
 * `stale` — the request's epoch is older than one already seen: the gate consumed the seq as a 409.
 * @typedef {{ turn: 'run', seq: number }
 *   | { turn: 'duplicate', seq: number, outcome: SeqOutcome }
 *   | { turn: 'stale', seq: number, maxEpoch: number }} Turn
 */

/** A malformed sequencing header (answer 400). */
export class SeqHeaderError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SeqHeaderError';
    this.status = 400;
  }
}

/**
 * Reads the sequencing headers of a request (Node's lower-case `req.headers`). A request is in pipelined
 * order when it carries `x-understudy-stream`; serial order's replays carry `x-understudy-seq` alone (for
 * information) and are not gated.
 * @param {Record<string, string | string[] | undefined>} headers
 * @returns {Sequenced | undefined} undefined when the request is not in pipelined order (run it as is)
 * @throws {SeqHeaderError} when a header is malformed
 */
export function readSequence(headers) {
  const raw = headers[SEQ_HEADERS.seq];
  const stream = headers[SEQ_HEADERS.stream];
  if (stream === undefined) return undefined;
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 128)
    throw new SeqHeaderError(`${SEQ_HEADERS.stream} must be one string of 1 to 128 characters`);
  const seq = Number(raw);
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,15}$/.test(raw) || !Number.isSafeInteger(seq))
    throw new SeqHeaderError(`${SEQ_HEADERS.seq} must be a positive integer, got ${JSON.stringify(raw)}`);
  const epochRaw = headers[SEQ_HEADERS.epoch] ?? '0';
  const epoch = Number(epochRaw);
  if (typeof epochRaw !== 'string' || !/^[0-9]{1,15}$/.test(epochRaw))
    throw new SeqHeaderError(
      `${SEQ_HEADERS.epoch} must be a non-negative integer, got ${JSON.stringify(epochRaw)}`,
    );
  return { seq, stream, epoch, skip: headers[SEQ_HEADERS.skip] === '1' };
}

/**
 * @typedef {object} SeqGateOptions
 * @property {string} [stream] The stream the service last consumed a seq of (from its durable state). Default ''.
 * @property {number} [appliedSeq] The last seq it consumed in that stream. Default 0.
 * @property {number} [maxEpoch] The newest epoch it has seen. Default 0.
 * @property {number} [remember] How many recent outcomes are kept for answering duplicates. Default 4096.
 * @property {Array<[number, SeqOutcome]>} [recent] Outcomes of recent seqs of `stream` (from durable state), for duplicates after a restart.
 */

/**
 * @typedef {{ wake?: ((t: Turn) => void) | undefined, s: Sequenced, dups: Array<(t: Turn) => void> }} Slot
 */

/** Orders sequenced requests, deduplicates them by seq, and fences them by epoch. */
export class SeqGate {
  #stream;
  #applied;
  #maxEpoch;
  #remember;
  /** @type {Map<number, SeqOutcome>} */
  #outcomes = new Map();
  /** Seqs entered and not yet consumed. @type {Map<number, Slot>} */
  #slots = new Map();
  /** Requests of another stream waiting for it to start (its seq 1). @type {Array<{ s: Sequenced, resolve: (t: Promise<Turn>) => void }>} */
  #foreign = [];

  /** @param {SeqGateOptions} [options] */
  constructor(options = {}) {
    this.#stream = options.stream ?? '';
    this.#applied = options.appliedSeq ?? 0;
    this.#maxEpoch = options.maxEpoch ?? 0;
    this.#remember = options.remember ?? 4096;
    for (const [seq, outcome] of options.recent ?? [])
      if (seq <= this.#applied && seq > this.#applied - this.#remember) this.#outcomes.set(seq, outcome);
  }

  /** The last consumed seq: what the service reports as its position. */
  get appliedSeq() {
    return this.#applied;
  }

  /** The stream the seqs belong to. */
  get stream() {
    return this.#stream;
  }

  /** The newest epoch seen. */
  get maxEpoch() {
    return this.#maxEpoch;
  }

  /**
   * Waits for the request's turn: resolves once every earlier seq of its stream was consumed.
   * A request of a new stream waits until that stream's seq 1 arrives (a new router starts a new stream).
   * @param {Sequenced} s
   * @returns {Promise<Turn>}
   */
  enter(s) {
    if (s.stream !== this.#stream) {
      if (s.seq !== 1) return new Promise((resolve) => this.#foreign.push({ s, resolve }));
      this.#switchStream(s.stream);
    }
    if (s.seq <= this.#applied)
      return Promise.resolve({
        turn: 'duplicate',
        seq: s.seq,
        outcome: this.#outcomes.get(s.seq) ?? 'unknown',
      });
    const slot = this.#slots.get(s.seq);
    if (slot) return new Promise((resolve) => slot.dups.push(resolve));
    /** @type {Slot} */
    const mine = { s, dups: [] };
    this.#slots.set(s.seq, mine);
    if (s.seq === this.#applied + 1) return Promise.resolve(this.#admit(s));
    return new Promise((resolve) => {
      mine.wake = resolve;
    });
  }

  /**
   * Marks the seq whose turn it is as consumed, with how it was answered (call it once the request's
   * effect is ordered — e.g. queued for the next group commit — not necessarily durable yet), and lets
   * the next seq run.
   * @param {number} seq
   * @param {SeqOutcome} outcome
   * @returns {boolean} false when the seq's stream was given up meanwhile (nothing recorded)
   */
  complete(seq, outcome) {
    // A request of a stream given up since it entered (a new router started): nothing to record.
    if (!this.#slots.has(seq)) return false;
    if (seq !== this.#applied + 1)
      throw new RangeError(`seq-gate: complete(${seq}) but the seq whose turn it is is ${this.#applied + 1}`);
    this.#applied = seq;
    this.#outcomes.set(seq, outcome);
    this.#outcomes.delete(seq - this.#remember);
    const slot = this.#slots.get(seq);
    this.#slots.delete(seq);
    for (const d of slot?.dups ?? []) d({ turn: 'duplicate', seq, outcome });
    const next = this.#slots.get(seq + 1);
    if (next?.wake) {
      const wake = next.wake;
      next.wake = undefined;
      wake(this.#admit(next.s));
    }
    return true;
  }

  /** Seqs entered and waiting or running. */
  get waiting() {
    return this.#slots.size + this.#foreign.length;
  }

  /** @param {Sequenced} s @returns {Turn} */
  #admit(s) {
    if (s.epoch > 0 && s.epoch < this.#maxEpoch) {
      this.complete(s.seq, 409);
      return { turn: 'stale', seq: s.seq, maxEpoch: this.#maxEpoch };
    }
    if (s.epoch > this.#maxEpoch) this.#maxEpoch = s.epoch;
    return { turn: 'run', seq: s.seq };
  }

  /** @param {string} stream */
  #switchStream(stream) {
    // Requests of the old stream still waiting can never run (that router is gone): refuse them.
    const old = [...this.#slots.values()];
    this.#slots.clear();
    for (const slot of old) {
      /** @type {Turn} */
      const refused = { turn: 'stale', seq: slot.s.seq, maxEpoch: this.#maxEpoch };
      slot.wake?.(refused);
      for (const d of slot.dups) d(refused);
    }
    this.#outcomes.clear();
    this.#stream = stream;
    this.#applied = 0;
    const foreign = this.#foreign;
    this.#foreign = [];
    for (const f of foreign) {
      if (f.s.stream === stream) queueMicrotask(() => f.resolve(this.enter(f.s)));
      else this.#foreign.push(f);
    }
  }
}
