/** One mutating request, as applied by the primary and mirrored to echoes in the primary's order. */
export interface Mutation {
  /** Per-service sequence number, strictly increasing. */
  seq: number;
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
