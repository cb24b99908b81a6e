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
   * Decides the request's turn now when nothing needs waiting for — the common case: its seq is the
   * next one, or one consumed already. Returns undefined when it must wait (an earlier seq is not
   * consumed yet, the same seq is running, or its stream has not started): then call {@link enter}.
   * A turn it returns counts exactly as one {@link enter} resolves (`run`: call {@link complete}).
   * Saves a promise and a turn of the microtask queue per request.
   * @param {Sequenced} s
   * @returns {Turn | undefined}
   */
  tryEnter(s) {
    if (s.stream !== this.#stream) {
      if (s.seq !== 1) return undefined;
      this.#switchStream(s.stream);
    }
    if (s.seq <= this.#applied)
      return { turn: 'duplicate', seq: s.seq, outcome: this.#outcomes.get(s.seq) ?? 'unknown' };
    if (s.seq !== this.#applied + 1 || this.#slots.has(s.seq)) return undefined;
    this.#slots.set(s.seq, { s, dups: [] });
    return this.#admit(s);
  }

  /**
   * Waits for the request's turn: resolves once every earlier seq of its stream was consumed.
   * A request of a new stream waits until that stream's seq 1 arrives (a new router starts a new stream).
   * @param {Sequenced} s
   * @returns {Promise<Turn>}
   */
  enter(s) {
    const now = this.tryEnter(s);
    if (now) return Promise.resolve(now);
    if (s.stream !== this.#stream) return new Promise((resolve) => this.#foreign.push({ s, resolve }));
    const slot = this.#slots.get(s.seq);
    if (slot) return new Promise((resolve) => slot.dups.push(resolve));
    /** @type {Slot} */
    const mine = { s, dups: [] };
    this.#slots.set(s.seq, mine);
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

// Batched replication (docs/failover.md, "Batched replication"; the spec's `echo.mutations.batch`): the
// router POSTs many mutations to one path of a hot echo at once. Body: one JSON line
// `{"v":1,"stream":…,"mutations":[{seq,epoch,kind,method,path,headers,length}…]}`, then the bodies
// concatenated in order. Answer: 200 with JSON `{ appliedSeq, results: [{ seq, status }…] }`, the
// results in order up to and including the first that failed (5xx: not applied, sent again).

/** Content type of a batch request. */
export const BATCH_CONTENT_TYPE = 'application/x-understudy-batch';

/**
 * One mutation of a batch, shaped like the request it stands for: `headers` carry the sequencing
 * headers too (`readSequence(entry.headers)` reads them as from a single request).
 * @typedef {{ seq: number, method: string, path: string, headers: Record<string, string>, body: Buffer }} BatchEntry
 */

/**
 * Encodes a batch (what the router sends; for tests and other routers).
 * @param {string} stream
 * @param {Array<{ seq: number, epoch?: number, kind?: 'apply' | 'skip', method: string, path: string, headers?: Record<string, string>, body?: Buffer }>} mutations
 * @returns {Buffer}
 */
export function encodeBatch(stream, mutations) {
  const meta = mutations.map((m) => ({
    seq: m.seq,
    epoch: m.epoch ?? 0,
    kind: m.kind ?? 'apply',
    method: m.method,
    path: m.path,
    headers: m.headers ?? {},
    length: m.kind === 'skip' ? 0 : (m.body?.length ?? 0),
  }));
  const head = Buffer.from(JSON.stringify({ v: 1, stream, mutations: meta }) + '\n', 'utf8');
  return Buffer.concat([
    head,
    ...mutations.filter((m) => m.kind !== 'skip').map((m) => m.body ?? Buffer.alloc(0)),
  ]);
}

/**
 * Decodes a batch request's body into entries in seq order.
 * @param {Buffer} buf
 * @returns {{ stream: string, entries: BatchEntry[] }}
 * @throws {SeqHeaderError} when the body is not a well-formed batch (answer 400)
 */
export function decodeBatch(buf) {
  const nl = buf.indexOf(10);
  if (nl < 0) throw new SeqHeaderError('batch: no header line (a JSON line, then the bodies)');
  /** @type {any} */
  let head;
  try {
    head = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  } catch {
    throw new SeqHeaderError('batch: the header line is not JSON');
  }
  if (head?.v !== 1 || typeof head.stream !== 'string' || !Array.isArray(head.mutations))
    throw new SeqHeaderError('batch: the header line must be {"v":1,"stream":string,"mutations":[…]}');
  let offset = nl + 1;
  /** @type {BatchEntry[]} */
  const entries = [];
  let last = 0;
  for (const [i, m] of head.mutations.entries()) {
    const where = `batch: mutation ${i}`;
    if (!Number.isSafeInteger(m?.seq) || m.seq <= last)
      throw new SeqHeaderError(`${where}: seq must be a positive integer above the previous one`);
    if (!Number.isSafeInteger(m.epoch) || m.epoch < 0)
      throw new SeqHeaderError(`${where}: epoch must be a non-negative integer`);
    if (typeof m.method !== 'string' || typeof m.path !== 'string' || !m.path.startsWith('/'))
      throw new SeqHeaderError(`${where}: method and path (starting with /) must be strings`);
    if (!Number.isSafeInteger(m.length) || m.length < 0 || offset + m.length > buf.length)
      throw new SeqHeaderError(`${where}: length ${m.length} runs past the end of the batch`);
    // No prototype: header names come from the request.
    /** @type {Record<string, string>} */
    const headers = Object.create(null);
    for (const [k, v] of Object.entries(m.headers ?? {}))
      if (typeof v === 'string') headers[k.toLowerCase()] = v;
    headers[SEQ_HEADERS.seq] = String(m.seq);
    headers[SEQ_HEADERS.stream] = head.stream;
    headers[SEQ_HEADERS.epoch] = String(m.epoch);
    headers['x-understudy-replay'] = '1';
    if (m.kind === 'skip') headers[SEQ_HEADERS.skip] = '1';
    else delete headers[SEQ_HEADERS.skip];
    entries.push({
      seq: m.seq,
      method: m.method,
      path: m.path,
      headers,
      body: buf.subarray(offset, offset + m.length),
    });
    offset += m.length;
    last = m.seq;
  }
  if (offset !== buf.length)
    throw new SeqHeaderError(`batch: ${buf.length - offset} bytes after the last body`);
  return { stream: head.stream, entries };
}

/**
 * Applies a decoded batch with the service's own handler of one sequenced request, and builds the
 * answer. `applyOne` gives the status the request would be answered with — at once (a number), or
 * as a promise when it has to wait (it must order itself with its {@link SeqGate}, as for concurrent
 * single requests: it is called for every entry at once, in seq order, so a group commit takes them
 * together). Results are collected in order and stop at the first failure (a 5xx or a throw, reported
 * as 500): the router sends that one and the rest again.
 *
 * A status given at once must already be ordered (its record queued) but need not be durable: the
 * service then makes everything it queued durable before it sends the answer (one group commit for
 * the whole batch, e.g. `await applyBatch(…)`, then `await durable()`). Entries that wait cost a
 * promise each; entries whose turn is decided at once ({@link SeqGate.tryEnter}) none.
 * @param {{ stream: string, entries: BatchEntry[] }} batch
 * @param {(entry: BatchEntry) => number | Promise<number>} applyOne
 * @returns {Promise<{ appliedSeq: number, results: Array<{ seq: number, status: number }> }>}
 */
export async function applyBatch(batch, applyOne) {
  /** @param {BatchEntry} e @returns {number | Promise<number>} */
  const run = (e) => {
    try {
      const status = applyOne(e);
      if (typeof status === 'number') return status;
      return Promise.resolve(status).then(
        (st) => (typeof st === 'number' ? st : 500),
        () => 500,
      );
    } catch {
      return 500;
    }
  };
  const entries = batch.entries;
  // Without a stream nothing orders the entries but this loop: one at a time.
  const started = batch.stream ? entries.map(run) : undefined;
  /** @type {Array<{ seq: number, status: number }>} */
  const results = [];
  let appliedSeq = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = /** @type {BatchEntry} */ (entries[i]);
    const now = started?.[i] ?? run(e);
    const status = typeof now === 'number' ? now : await now;
    results.push({ seq: e.seq, status });
    if (status >= 500) break;
    appliedSeq = e.seq;
  }
  return { appliedSeq, results };
}
