// Concurrent send (docs/failover.md, "Concurrent send"): in pipelined order each write is sent to the
// live echoes as it arrives, beside the forward to the primary. This keeps the writes sequenced and not
// yet logged, offers them to echoes in seq order, and tells how the echoes consumed one.
import type { EchoReplicator } from './echo-replicator.js';
import type { Mutation } from './mutation.js';
import type { MutationRequest } from './replication-types.js';

/** The writes of one service sent to its echoes before the primary answered them. */
export class ConcurrentSend {
  /** Sequenced and not yet logged, by seq: the entry sent early and the request it was made of. */
  readonly #pending = new Map<number, { m: Mutation; request: MutationRequest }>();

  /** Sends the arrival's entry `m` (an `apply` of `request`) to each of `echoes` that takes it now. */
  offer(m: Mutation, request: MutationRequest, echoes: Iterable<EchoReplicator>): void {
    this.#pending.set(m.seq, { m, request });
    for (const echo of echoes) echo.offerEarly(m);
  }

  /** The entry sent early for seq `seq` if it was made of this very `request` (the log reuses it). */
  sentFor(seq: number, request: MutationRequest): Mutation | undefined {
    const p = this.#pending.get(seq);
    return p?.request === request ? p.m : undefined;
  }

  /** Seq `seq` entered the log: it is no longer offered to echoes that join. */
  logged(seq: number): void {
    this.#pending.delete(seq);
  }

  /** Offers `echo` the sequenced writes right after what it has queued (it joined while they were in flight). */
  offerFollowing(echo: EchoReplicator): void {
    for (let s = echo.lastQueued + 1; ; s++) {
      const p = this.#pending.get(s);
      if (!p || !echo.offerEarly(p.m)) return;
    }
  }

  /**
   * Whether one of `echoes` may have applied seq `seq`, sent to it early: it answered 2xx, or it still
   * has not answered after `timeoutMs` of waiting (it may apply it yet).
   */
  async echoMayHaveApplied(
    seq: number,
    echoes: Iterable<EchoReplicator>,
    timeoutMs: number,
  ): Promise<boolean> {
    const list = [...echoes];
    const answers = await Promise.all(list.map((e) => e.earlyAnswer(seq, timeoutMs)));
    return answers.some(
      (s, i) =>
        (s !== undefined && s >= 200 && s < 300) || (s === undefined && list[i]?.earlyUnanswered(seq)),
    );
  }
}
