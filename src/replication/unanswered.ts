// Pipelined order: a seq the primary gave no answer for (docs/failover.md, "How a pipelined mutation
// flows", step 2, and "Concurrent send"): how the router learns how it was consumed.
import type { EchoReplicator } from './echo-replicator.js';
import type { Mutation, MutationKind } from './mutation.js';

/** One unanswered seq, and what resolving it needs of its service's replication. */
export interface UnansweredSeq {
  /** The epoch the request was stamped with. */
  stamped: number;
  /** Concurrent send: an echo applied it (2xx) when it was sent to it at arrival, or has not answered yet. */
  echoApplied: boolean;
  /** Whether it is still to be resolved (and the service open). */
  pending: () => boolean;
  /** The current primary's feed, if there is a primary to ask. */
  feed: () => EchoReplicator | undefined;
  /** The service's current epoch. */
  epoch: () => number;
  /** Its entry of that kind. */
  entry: (kind: MutationKind) => Mutation;
  resolve: (kind: MutationKind, by: string | undefined) => void;
}

/** How long an unanswered seq an echo applied waits, after a fencing, for a new primary to run it. */
const RUN_ON_NEW_PRIMARY_MS = 10_000;

/**
 * Resolves an unanswered seq by asking the current primary. Usually it is asked to consume the seq as a
 * skip; its answer decides (consumed already with a 2xx, or of unknown outcome: `apply`, replaying the
 * request on the echoes, which apply it the same way; skipped or rejected: `skip`). When an echo applied
 * it (concurrent send), the primary is asked to run it instead (it applies it, or answers how it consumed
 * it already), so that it does not skip a write the echo holds; its status decides. While no primary can
 * be asked, this retries — unless a promotion moved the epoch past the one the request was stamped with:
 * the old primary is fenced, and the seq is skipped everywhere (after up to 10 s of waiting for a new
 * primary to run it, when an echo applied it).
 */
export async function resolveUnansweredSeq(u: UnansweredSeq): Promise<void> {
  let backoff = 10;
  let fencedAt: number | undefined;
  while (u.pending()) {
    const feed = u.feed();
    try {
      if (feed && u.echoApplied) {
        const status = await feed.complete(u.entry('apply'));
        u.resolve(status >= 200 && status < 300 ? 'apply' : 'skip', feed.target.instanceId);
        return;
      }
      if (feed) {
        const outcome = await feed.ask(u.entry('skip'));
        const applied =
          outcome === 'unknown' || (typeof outcome === 'number' && outcome >= 200 && outcome < 300);
        u.resolve(applied ? 'apply' : 'skip', feed.target.instanceId);
        return;
      }
    } catch {
      // Unreachable or not keeping the contract: retried below.
    }
    if (u.epoch() > u.stamped) {
      fencedAt ??= performance.now();
      if (!u.echoApplied || performance.now() - fencedAt > RUN_ON_NEW_PRIMARY_MS) {
        u.resolve('skip', undefined);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 500);
  }
}
