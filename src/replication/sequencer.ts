// Pipelined order's sequencing (docs/failover.md, "How a pipelined mutation flows"): seqs handed out at
// arrival, resolved out of order, released to the log in seq order. The fan-out to echoes is
// ServiceReplication's; this module only decides when an entry may be logged.
import { REPLAYED_HEADERS, type Mutation, type MutationKind } from './mutation.js';
import type { MutationRequest } from './replication-types.js';
import { SeqWaiters } from './seq-waiters.js';

/**
 * The log entry of seq `seq` for `request`: an `apply` entry keeps the request's replayed headers and
 * body, a `skip` entry neither.
 */
export function entryOf(seq: number, request: MutationRequest, kind: MutationKind, epoch: number): Mutation {
  const headers: Record<string, string> = {};
  if (kind === 'apply')
    for (const name of REPLAYED_HEADERS) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
  return {
    seq,
    kind,
    epoch,
    partition: '',
    method: request.method.toUpperCase(),
    path: request.path,
    headers,
    body: kind === 'apply' ? request.body : Buffer.alloc(0),
    at: Date.now(),
  };
}

/**
 * Seqs of one pipelined service: {@link sequence} numbers a mutation at arrival; {@link resolve} says
 * what became of it, in any order; each resolved entry is handed to `release` once every earlier seq
 * was (so the log stays gapless and in seq order).
 */
export class Sequencer {
  #lastAssigned: number;
  /** Seqs assigned and not yet resolved (apply or skip). */
  readonly #unresolved = new Set<number>();
  /** Resolved seqs waiting for an earlier one to be resolved, with who resolved them. */
  readonly #resolved = new Map<number, { m: Mutation; by: string | undefined }>();
  /** Waiters for a seq's release (one timer for all). */
  readonly #releasedWaiters = new SeqWaiters();

  /**
   * @param released the last seq released (the log's last seq) — read at every release
   * @param release called with every entry in seq order, and who resolved it
   */
  constructor(
    private readonly released: () => number,
    private readonly release: (m: Mutation, by: string | undefined) => void,
  ) {
    this.#lastAssigned = released();
  }

  /** The last seq handed out. */
  get lastAssigned(): number {
    return this.#lastAssigned;
  }

  /** Seqs handed out whose outcome is not known yet. */
  get unresolvedCount(): number {
    return this.#unresolved.size;
  }

  /** Numbers a mutation (it must be resolved exactly once). */
  sequence(): number {
    const seq = ++this.#lastAssigned;
    this.#unresolved.add(seq);
    return seq;
  }

  /** Whether `seq` was handed out and not resolved yet. */
  isUnresolved(seq: number): boolean {
    return this.#unresolved.has(seq);
  }

  /** The lowest seq not resolved yet (lastAssigned + 1 when every one is). */
  lowestUnresolved(): number {
    let lowest = this.#lastAssigned + 1;
    for (const s of this.#unresolved) lowest = Math.min(lowest, s);
    return lowest;
  }

  /** Seqs up to `seq` count as handed out (they were logged as skips by the caller). */
  assignedUpTo(seq: number): void {
    this.#lastAssigned = Math.max(this.#lastAssigned, seq);
  }

  /**
   * Resolves `m.seq` with entry `m` (ignored unless handed out and unresolved), then releases every
   * entry that no earlier unresolved seq holds back.
   */
  resolve(m: Mutation, by: string | undefined): void {
    if (!this.#unresolved.delete(m.seq)) return;
    this.#resolved.set(m.seq, { m, by });
    for (;;) {
      const next = this.#resolved.get(this.released() + 1);
      if (!next) break;
      this.#resolved.delete(next.m.seq);
      this.release(next.m, next.by);
      this.#releasedWaiters.settle(next.m.seq);
    }
  }

  /**
   * Resolves once `seq` is released (true), or after `timeoutMs` (false). Waiters whose deadlines come
   * in the order they do (one timeout for all: the service's) share one timer, none per write.
   */
  waitReleased(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.released() >= seq) return Promise.resolve(true);
    return this.#releasedWaiters.wait(seq, timeoutMs);
  }

  /** Wakes every waiter (closing): they resolve true and find the service closed. */
  wakeAll(): void {
    this.#releasedWaiters.settleAll(true);
  }
}
