// The batch contract of hot echoes (docs/failover.md, "Batched replication"): many mutations in one
// request to an echo, applied in seq order, answered per mutation. The instance side is
// examples/lib/seq-gate.mjs (decodeBatch, applyBatch); this is the router's side.
import type { Mutation } from './mutation.js';

/** Content type of a batch request. */
export const BATCH_CONTENT_TYPE = 'application/x-understudy-batch';

/**
 * Async consistency, batched replication: how long a batch to an echo may wait to fill, ms, by default
 * (the spec's `echo.mutations.batch.linger`). At ~3500 writes/s, 20 ms gives batches of ~45 instead of
 * ~25 with 5 ms: about a third less CPU per write for the echo and a tenth less for the router.
 */
export const DEFAULT_BATCH_LINGER_MS = 20;

/** Where and how big batches to an echo are (the spec's `echo.mutations.batch`, resolved). */
export interface BatchRules {
  /** Path on the instance that takes a batch (POST). */
  path: string;
  /** Mutations in one batch at most. */
  max: number;
  /** Batches in flight to one echo at once; the next one accumulates meanwhile. */
  inflight: number;
  /**
   * Async consistency: ms a batch that is not full may wait to fill (write-through sends at once).
   * @default 20 (DEFAULT_BATCH_LINGER_MS)
   */
  linger?: number;
}

/** One mutation's entry in a batch's header line (its body follows the line, `length` bytes). */
export interface BatchEntryMeta {
  seq: number;
  epoch: number;
  kind: 'apply' | 'skip';
  method: string;
  path: string;
  headers: Record<string, string>;
  length: number;
}

/**
 * Encodes a batch: one JSON line `{"v":1,"stream":…,"mutations":[…meta…]}`, then every mutation's body,
 * concatenated in order (binary-safe; no base64).
 */
export function encodeBatch(stream: string, mutations: readonly Mutation[]): Buffer {
  const meta: BatchEntryMeta[] = mutations.map((m) => ({
    seq: m.seq,
    epoch: m.epoch,
    kind: m.kind,
    method: m.method,
    path: m.path,
    headers: m.headers,
    length: m.kind === 'skip' ? 0 : m.body.length,
  }));
  const head = Buffer.from(JSON.stringify({ v: 1, stream, mutations: meta }) + '\n', 'utf8');
  return Buffer.concat([head, ...mutations.filter((m) => m.kind !== 'skip').map((m) => m.body)]);
}

/** One mutation's result in an instance's answer to a batch. */
export interface BatchResult {
  seq: number;
  /** The status it was applied with (or answered as a duplicate with); 5xx means not applied. */
  status: number;
}

/**
 * How many mutations of `sent`, from the first, the instance's answer says were applied (their
 * results in order, each below 500). Throws when the answer is not the batch contract's JSON.
 */
export function appliedPrefix(sent: readonly Mutation[], answer: string, where: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    throw new Error(
      `${where} answered a batch with no JSON: it does not keep the batch contract (docs/failover.md)`,
    );
  }
  const results = (parsed as { results?: unknown } | null)?.results;
  if (!Array.isArray(results))
    throw new Error(
      `${where} answered a batch without a 'results' array: it does not keep the batch contract (docs/failover.md)`,
    );
  let n = 0;
  for (const r of results as unknown[]) {
    const m = sent[n];
    if (!m) break;
    const { seq, status } = (r ?? {}) as { seq?: unknown; status?: unknown };
    if (seq !== m.seq || typeof status !== 'number' || status >= 500) break;
    n++;
  }
  return n;
}
