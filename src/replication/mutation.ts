/**
 * What a log entry asks an instance to do with its sequence number: `apply` replays the request;
 * `skip` consumes the number without applying anything (pipelined order: the primary rejected the
 * request or never answered it, and the instances must not wait for it; docs/failover.md).
 */
export type MutationKind = 'apply' | 'skip';

/** One mutating request, as applied by the primary and mirrored to echoes in the primary's order. */
export interface Mutation {
  /** Per-service sequence number, strictly increasing, assigned by the caller of the log. */
  seq: number;
  /** `apply` (replay the request) or `skip` (consume the seq only; body empty). */
  kind: MutationKind;
  /** Service epoch the primary that applied it served under. */
  epoch: number;
  /** Order key: mutations of one key are applied in seq order; '' is the total order. */
  partition: string;
  method: string;
  /** Path and query. */
  path: string;
  /** Headers worth replaying (content-type, x-request-id, …). */
  headers: Record<string, string>;
  body: Buffer;
  /** When the primary acknowledged it (ms since the epoch). */
  at: number;
}

/** Headers a replay carries, so the echo can deduplicate and fence. */
export const REPLAY_HEADERS = {
  seq: 'x-understudy-seq',
  epoch: 'x-understudy-epoch',
  replay: 'x-understudy-replay',
  /** Pipelined order: `1` on a request that only consumes its seq (a skip entry). */
  skip: 'x-understudy-skip',
  /** Pipelined order: which sequence the seq numbers belong to (a new router starts a new stream). */
  stream: 'x-understudy-stream',
  /** Pipelined order, on an instance's answer to a skip: `skip`, or the status it applied the seq with. */
  outcome: 'x-understudy-outcome',
  requestId: 'x-request-id',
} as const;

/** Request headers kept in the log and replayed (everything else is connection- or client-specific). */
export const REPLAYED_HEADERS = [
  'content-type',
  'content-encoding',
  'x-request-id',
  'if-match',
  'if-none-match',
  // The echo must act on the method the primary acted on (router/request-target.ts, METHOD_OVERRIDE_HEADERS).
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
];
