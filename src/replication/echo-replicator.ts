import { Pool } from 'undici';
import { BATCH_CONTENT_TYPE, appliedPrefix, encodeBatch, type BatchRules } from './batch.js';
import { postBuffered } from './batch-post.js';
import { REPLAY_HEADERS, type Mutation } from './mutation.js';
import { SeqWaiters } from './seq-waiters.js';

/** Where an echo receives replayed mutations. */
export interface EchoTarget {
  instanceId: string;
  host: string;
  port: number;
}

/** Options of {@link EchoReplicator}. */
export interface EchoReplicatorOptions {
  target: EchoTarget;
  /** A replay not applied within this time marks the echo lagging (it leaves the synchronous set). */
  timeoutMs: number;
  /** Called once when the echo starts lagging, and once when it has caught up again. */
  onSyncChange?: (inSync: boolean, reason: string) => void;
  /**
   * Pipelined order: send up to `window` mutations at once (the instance orders them by
   * `x-understudy-seq`) instead of one at a time per partition, and send `skip` entries.
   */
  pipelined?: { stream: string; window: number };
  /**
   * Pipelined order only: send the mutations ready to go as batches of up to `max` in one POST to
   * `path` (docs/failover.md, "Batched replication"), `inflight` batches at once — while they are out
   * the next one accumulates (group commit). @default unset: one request per mutation
   */
  batch?: BatchRules;
  /**
   * Batched: how long a batch may wait to fill before it leaves, ms, while fewer than `max` mutations
   * are ready (nobody waits for the echo in async mode: fewer, larger batches cost the router and the
   * echo less); {@link EchoReplicator.flushNow} cuts it short. @default 0: what is ready in the same
   * turn of the event loop leaves together
   */
  coalesceMs?: number;
}

/** How an instance consumed a seq, as it answers a skip (pipelined order; see docs/failover.md). */
export type SeqOutcome = number | 'skip' | 'unknown';

/** Replication state of one echo. */
export interface EchoReplicationStats {
  instanceId: string;
  inSync: boolean;
  appliedSeq: number;
  /** Mutations queued but not yet applied. */
  pending: number;
  /** Age of the oldest unapplied mutation, ms (0 when none). */
  lagMs: number;
  applied: number;
  /** Batched replication: batch requests sent (applied / batches is the mean batch size). */
  batches?: number;
  failures: number;
  lastError?: string;
}

/**
 * Replays the service's mutations on one echo over a keep-alive pool: serial order sends one at a time
 * per partition, in sequence order; pipelined order sends a window of them at once, the echo ordering
 * them by seq (and `skip` entries as requests marked `x-understudy-skip: 1`).
 * A failed replay is retried (with backoff) until it succeeds or the replicator closes: the echo may be
 * restarting. Write-through callers wait with {@link EchoReplicator.waitApplied}, which gives up after
 * the timeout — the echo then leaves the synchronous set until it has applied everything again.
 */
export class EchoReplicator {
  readonly #pool: Pool;
  readonly #queues = new Map<string, Mutation[]>();
  readonly #running = new Set<string>();
  readonly #unapplied = new Map<number, Mutation>();
  /**
   * Write-through waiters by seq (one timer for all: no timer per write); one past its deadline takes the
   * echo out of the synchronous set.
   */
  readonly #waiters = new SeqWaiters((seq) =>
    this.#setInSync(false, `mutation ${seq} not applied within ${this.options.timeoutMs} ms`),
  );
  #batches = 0;
  /** Pipelined: mutations not yet sent, in seq order. */
  #backlog: Mutation[] = [];
  #sending = 0;
  #pumpScheduled = false;
  /** Batched with `coalesceMs`: the timer a batch that is not full waits on. */
  #lingering: ReturnType<typeof setTimeout> | undefined;
  #appliedSeq = 0;
  #applied = 0;
  #failures = 0;
  #lastError: string | undefined;
  #inSync = true;
  #closed = false;

  constructor(private readonly options: EchoReplicatorOptions) {
    this.#pool = new Pool(`http://${options.target.host}:${options.target.port}`, {
      // Pipelined: every request in the window may wait at the instance for its turn, and a retry of the
      // one they wait for still needs a connection.
      connections: options.pipelined
        ? (options.batch ? options.batch.inflight : options.pipelined.window) + 4
        : 8,
      pipelining: 1,
    });
  }

  get target(): EchoTarget {
    return this.options.target;
  }

  /** Queues a mutation for replay. */
  enqueue(m: Mutation): void {
    if (this.#closed) return;
    this.#unapplied.set(m.seq, m);
    if (this.options.pipelined) {
      this.#backlog.push(m);
      this.#pump();
      return;
    }
    const q = this.#queues.get(m.partition) ?? [];
    q.push(m);
    this.#queues.set(m.partition, q);
    if (!this.#running.has(m.partition)) void this.#drain(m.partition);
  }

  /** Resolves true once `seq` is applied on the echo, false when it was not within the timeout (or closed). */
  waitApplied(seq: number): Promise<boolean> {
    if (!this.#unapplied.has(seq) || this.#closed) return Promise.resolve(!this.#unapplied.has(seq));
    return this.#waiters.wait(seq, this.options.timeoutMs);
  }

  /**
   * Sends what waits for its batch to fill ({@link EchoReplicatorOptions.coalesceMs}) at once: a
   * failover or switchover waiting for this echo to catch up must not wait for the linger.
   */
  flushNow(): void {
    if (this.#lingering === undefined) return;
    clearTimeout(this.#lingering);
    this.#lingering = undefined;
    this.#pumpScheduled = false;
    if (this.options.batch) this.#pumpBatches(this.options.batch);
  }

  /** Whether the echo has applied every mutation in `seqs`. */
  hasApplied(seq: number): boolean {
    return !this.#unapplied.has(seq);
  }

  /**
   * The highest seq such that it and every seq queued before it were applied: the echo's position
   * (what a replay to it must start after).
   */
  get contiguousApplied(): number {
    for (const seq of this.#unapplied.keys()) return seq - 1;
    return this.#appliedSeq;
  }

  /**
   * Pipelined order: asks the instance to consume `m.seq` as a skip and returns how the seq was consumed
   * (`skip` when this request did it, else the status it was applied with, or `unknown`). Throws when the
   * instance cannot be reached or does not answer with `x-understudy-outcome`.
   */
  async ask(m: Mutation): Promise<SeqOutcome> {
    const res = await this.#request({ ...m, kind: 'skip', body: Buffer.alloc(0), headers: {} });
    await res.body.dump();
    const raw = res.headers[REPLAY_HEADERS.outcome];
    const outcome = typeof raw === 'string' ? raw : undefined;
    if (outcome === 'skip' || outcome === 'unknown') return outcome;
    const status = Number(outcome);
    if (outcome === undefined || !Number.isInteger(status))
      throw new Error(
        `instance ${this.options.target.instanceId} answered HTTP ${res.statusCode} to a skip of seq ${m.seq} without a valid ${REPLAY_HEADERS.outcome} header: it does not keep the pipelined contract (docs/failover.md)`,
      );
    return status;
  }

  /** Sequence numbers queued but not yet applied, ascending. */
  unappliedSeqs(): number[] {
    return [...this.#unapplied.keys()].sort((a, b) => a - b);
  }

  get inSync(): boolean {
    return this.#inSync;
  }

  stats(now = Date.now()): EchoReplicationStats {
    let oldest = Infinity;
    for (const m of this.#unapplied.values()) oldest = Math.min(oldest, m.at);
    return {
      instanceId: this.options.target.instanceId,
      inSync: this.#inSync,
      appliedSeq: this.#appliedSeq,
      pending: this.#unapplied.size,
      lagMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      applied: this.#applied,
      ...(this.options.batch ? { batches: this.#batches } : {}),
      failures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  async #drain(partition: string): Promise<void> {
    this.#running.add(partition);
    try {
      const q = this.#queues.get(partition) ?? [];
      let backoff = 10;
      while (q.length > 0 && !this.#closed) {
        const m = q[0];
        if (!m) break;
        try {
          await this.#replay(m);
          q.shift();
          backoff = 10;
          this.#markApplied(m);
        } catch (err) {
          this.#failures++;
          this.#lastError = (err as Error).message;
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, 500);
        }
      }
    } finally {
      this.#running.delete(partition);
    }
  }

  /** Pipelined: keeps up to `window` mutations in flight, oldest first. */
  #pump(): void {
    if (this.options.batch) {
      const batch = this.options.batch;
      // A full batch does not wait for the rest of the linger.
      if (this.#lingering && this.#backlog.length >= batch.max) {
        this.flushNow();
        return;
      }
      // Batched: entries that become ready in the same turn of the event loop (the primary's group
      // commit answers many writes at once) leave in one batch.
      if (this.#pumpScheduled) return;
      this.#pumpScheduled = true;
      const delay = this.options.coalesceMs ?? 0;
      if (delay > 0 && this.#backlog.length < batch.max)
        this.#lingering = setTimeout(() => this.flushNow(), delay);
      else
        setImmediate(() => {
          this.#pumpScheduled = false;
          this.#pumpBatches(batch);
        });
      return;
    }
    const window = this.options.pipelined?.window ?? 1;
    while (this.#sending < window && this.#backlog.length > 0 && !this.#closed) {
      const m = this.#backlog.shift() as Mutation;
      this.#sending++;
      void this.#sendUntilApplied(m).finally(() => {
        this.#sending--;
        this.#pump();
      });
    }
  }

  /** Pipelined: one mutation, retried (the instance deduplicates by seq) until applied or closed. */
  async #sendUntilApplied(m: Mutation): Promise<void> {
    let backoff = 10;
    while (!this.#closed) {
      try {
        await this.#replay(m);
        this.#markApplied(m);
        return;
      } catch (err) {
        this.#failures++;
        this.#lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 500);
      }
    }
  }

  /**
   * Batched: keeps up to `inflight` batches out, each the oldest `max` mutations not sent yet; what
   * arrives meanwhile waits for the next batch (group commit).
   */
  #pumpBatches(batch: BatchRules): void {
    while (this.#sending < batch.inflight && this.#backlog.length > 0 && !this.#closed) {
      const ms = this.#backlog.splice(0, batch.max);
      this.#sending++;
      void this.#sendBatchUntilApplied(batch.path, ms).finally(() => {
        this.#sending--;
        this.#pump();
      });
    }
  }

  /**
   * Batched: one batch, until every mutation in it was applied or the replicator closes. The instance
   * applies a prefix and stops at a failure; the rest is sent again (it deduplicates by seq).
   */
  async #sendBatchUntilApplied(path: string, ms: Mutation[]): Promise<void> {
    const stream = this.options.pipelined?.stream ?? '';
    const where = `instance ${this.options.target.instanceId} (POST ${path})`;
    const headers = [
      'content-type',
      BATCH_CONTENT_TYPE,
      REPLAY_HEADERS.replay,
      '1',
      REPLAY_HEADERS.stream,
      stream,
    ];
    let rest = ms;
    let backoff = 10;
    while (!this.#closed && rest.length > 0) {
      try {
        this.#batches++;
        const { status, text } = await postBuffered(
          this.#pool,
          path,
          headers,
          encodeBatch(stream, rest),
          this.options.timeoutMs * 5,
        );
        if (status !== 200)
          throw new Error(
            `${where} answered HTTP ${status} to a batch of seq ${rest[0]?.seq}..${rest.at(-1)?.seq}${status === 404 || status === 405 ? ': it does not take batches there (echo.mutations.batch, docs/failover.md)' : ''}`,
          );
        const n = appliedPrefix(rest, text, where);
        for (const m of rest.slice(0, n)) this.#markApplied(m);
        if (n > 0) backoff = 10;
        rest = rest.slice(n);
        if (rest.length === 0) return;
        throw new Error(`${where} did not apply seq ${rest[0]?.seq} of a batch`);
      } catch (err) {
        this.#failures++;
        this.#lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 500);
      }
    }
  }

  #request(m: Mutation): ReturnType<Pool['request']> {
    const pipelined = this.options.pipelined;
    return this.#pool.request({
      method: m.method as 'PUT',
      path: m.path,
      headers: {
        ...m.headers,
        [REPLAY_HEADERS.seq]: String(m.seq),
        [REPLAY_HEADERS.epoch]: String(m.epoch),
        [REPLAY_HEADERS.replay]: '1',
        ...(pipelined ? { [REPLAY_HEADERS.stream]: pipelined.stream } : {}),
        ...(m.kind === 'skip' ? { [REPLAY_HEADERS.skip]: '1' } : {}),
      },
      body: m.body,
      headersTimeout: this.options.timeoutMs * 5,
      bodyTimeout: this.options.timeoutMs * 5,
    });
  }

  async #replay(m: Mutation): Promise<void> {
    const res = await this.#request(m);
    await res.body.dump();
    // The echo answers what the primary answered; only a server error means "not applied".
    if (res.statusCode >= 500) throw new Error(`echo answered HTTP ${res.statusCode} to mutation ${m.seq}`);
  }

  #markApplied(m: Mutation): void {
    this.#unapplied.delete(m.seq);
    this.#applied++;
    if (m.seq > this.#appliedSeq) this.#appliedSeq = m.seq;
    this.#waiters.settle(m.seq);
    if (!this.#inSync && this.#unapplied.size === 0)
      this.#setInSync(true, 'caught up: every mutation applied');
  }

  #setInSync(inSync: boolean, reason: string): void {
    if (this.#inSync === inSync) return;
    this.#inSync = inSync;
    this.options.onSyncChange?.(inSync, reason);
  }

  /** Stops replaying; waiters resolve false. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#lingering);
    this.#lingering = undefined;
    this.#waiters.settleAll(false);
    this.#backlog = [];
    await this.#pool.destroy();
  }
}
