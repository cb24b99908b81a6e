import { Pool } from 'undici';
import { REPLAY_HEADERS, type Mutation } from './mutation.js';

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
}

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
  failures: number;
  lastError?: string;
}

interface Waiter {
  seq: number;
  resolve: (applied: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * Replays the service's mutations on one echo, in sequence order per partition, over a keep-alive pool.
 * A failed replay is retried (with backoff) until it succeeds or the replicator closes: the echo may be
 * restarting. Write-through callers wait with {@link EchoReplicator.waitApplied}, which gives up after
 * the timeout — the echo then leaves the synchronous set until it has applied everything again.
 */
export class EchoReplicator {
  readonly #pool: Pool;
  readonly #queues = new Map<string, Mutation[]>();
  readonly #running = new Set<string>();
  readonly #unapplied = new Map<number, Mutation>();
  readonly #waiters = new Set<Waiter>();
  #appliedSeq = 0;
  #applied = 0;
  #failures = 0;
  #lastError: string | undefined;
  #inSync = true;
  #closed = false;

  constructor(private readonly options: EchoReplicatorOptions) {
    this.#pool = new Pool(`http://${options.target.host}:${options.target.port}`, {
      connections: 8,
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
    const q = this.#queues.get(m.partition) ?? [];
    q.push(m);
    this.#queues.set(m.partition, q);
    if (!this.#running.has(m.partition)) void this.#drain(m.partition);
  }

  /** Resolves true once `seq` is applied on the echo, false when it was not within the timeout (or closed). */
  waitApplied(seq: number): Promise<boolean> {
    if (!this.#unapplied.has(seq)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          this.#setInSync(false, `mutation ${seq} not applied within ${this.options.timeoutMs} ms`);
          resolve(false);
        }, this.options.timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Whether the echo has applied every mutation in `seqs`. */
  hasApplied(seq: number): boolean {
    return !this.#unapplied.has(seq);
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

  async #replay(m: Mutation): Promise<void> {
    const res = await this.#pool.request({
      method: m.method as 'PUT',
      path: m.path,
      headers: {
        ...m.headers,
        [REPLAY_HEADERS.seq]: String(m.seq),
        [REPLAY_HEADERS.epoch]: String(m.epoch),
        [REPLAY_HEADERS.replay]: '1',
      },
      body: m.body,
      headersTimeout: this.options.timeoutMs * 5,
      bodyTimeout: this.options.timeoutMs * 5,
    });
    await res.body.dump();
    // The echo answers what the primary answered; only a server error means "not applied".
    if (res.statusCode >= 500) throw new Error(`echo answered HTTP ${res.statusCode} to mutation ${m.seq}`);
  }

  #markApplied(m: Mutation): void {
    this.#unapplied.delete(m.seq);
    this.#applied++;
    if (m.seq > this.#appliedSeq) this.#appliedSeq = m.seq;
    for (const w of this.#waiters) {
      if (w.seq === m.seq) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve(true);
      }
    }
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
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#waiters.clear();
    await this.#pool.destroy();
  }
}
