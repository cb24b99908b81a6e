/**
 * A bounded, mergeable summary of a stream of non-negative values (a resource's use), from which
 * percentiles are read with a known relative error: a log-bucketed histogram. Bucket 0 holds values up
 * to {@link DIGEST_FLOOR}; bucket i > 0 holds values in (FLOOR·R^(i−1), FLOOR·R^i] with R =
 * {@link DIGEST_RATIO}. A percentile is the upper bound of the bucket holding the nearest-rank value,
 * capped at the largest value seen: never below the exact percentile and at most 10 % above it (for
 * values above the floor). Plain JSON data, so it is stored as it is.
 */
export interface Digest {
  /** Values counted (after ageing, see {@link ageDigest}). */
  n: number;
  /** Largest value seen (after ageing: the upper bound of the highest bucket still counted, capped). */
  max: number;
  /** Sparse bucket counts by bucket index (string keys: JSON objects). */
  counts: Record<string, number>;
}

/** Values at or below this fall into bucket 0 (one thousandth of a core, of a byte, of a byte/s). */
export const DIGEST_FLOOR = 1e-3;
/** Ratio of consecutive bucket bounds: the relative error of a percentile. */
export const DIGEST_RATIO = 1.1;
const LOG_RATIO = Math.log(DIGEST_RATIO);
/** Highest bucket index: values beyond FLOOR·R^MAX_BUCKET (≈ 1e23) share it. */
const MAX_BUCKET = 600;

/** An empty digest. */
export function emptyDigest(): Digest {
  return { n: 0, max: 0, counts: {} };
}

/** The bucket of a value (negative and non-finite values are not counted by {@link addToDigest}). */
export function bucketOf(value: number): number {
  if (value <= DIGEST_FLOOR) return 0;
  // A hair below 1 before ceil: a value exactly on a bound stays in the bucket it closes.
  return Math.min(MAX_BUCKET, Math.max(1, Math.ceil(Math.log(value / DIGEST_FLOOR) / LOG_RATIO - 1e-9)));
}

/** The upper bound of a bucket. */
export function bucketUpper(bucket: number): number {
  return bucket === 0 ? DIGEST_FLOOR : DIGEST_FLOOR * Math.pow(DIGEST_RATIO, bucket);
}

/** Counts one value (in place); a negative or non-finite value is ignored. Returns the digest. */
export function addToDigest(d: Digest, value: number): Digest {
  if (!Number.isFinite(value) || value < 0) return d;
  const b = String(bucketOf(value));
  d.counts[b] = (d.counts[b] ?? 0) + 1;
  d.n += 1;
  if (value > d.max) d.max = value;
  return d;
}

/**
 * The q-quantile (0 < q ≤ 1) by nearest rank: the upper bound of the bucket holding the ⌈q·n⌉-th
 * smallest value, capped at `max`. Undefined for an empty digest.
 */
export function digestQuantile(d: Digest, q: number): number | undefined {
  if (d.n <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * d.n));
  const buckets = Object.keys(d.counts)
    .map(Number)
    .sort((a, b) => a - b);
  let seen = 0;
  for (const b of buckets) {
    seen += d.counts[String(b)] ?? 0;
    if (seen >= rank) return Math.min(bucketUpper(b), d.max);
  }
  return d.max;
}

/**
 * Ages a digest that holds more than `cap` values (in place): every count is halved (rounded down,
 * empty buckets dropped), so that recent values weigh as much as all the older ones together and the
 * profile follows a service that changes. `max` falls to the upper bound of the highest bucket left.
 */
export function ageDigest(d: Digest, cap: number): Digest {
  if (d.n <= cap) return d;
  let n = 0;
  let top = -1;
  for (const [k, c] of Object.entries(d.counts)) {
    const half = Math.floor(c / 2);
    if (half === 0) {
      delete d.counts[k];
      continue;
    }
    d.counts[k] = half;
    n += half;
    top = Math.max(top, Number(k));
  }
  d.n = n;
  d.max = top < 0 ? 0 : Math.min(d.max, bucketUpper(top));
  return d;
}

/** The sum of two digests (a new digest). */
export function mergeDigests(a: Digest, b: Digest): Digest {
  const counts: Record<string, number> = { ...a.counts };
  for (const [k, c] of Object.entries(b.counts)) counts[k] = (counts[k] ?? 0) + c;
  return { n: a.n + b.n, max: Math.max(a.max, b.max), counts };
}

/** Whether a value read from the store is a digest (a profile written by another version is checked). */
export function isDigest(v: unknown): v is Digest {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Partial<Digest>;
  return (
    typeof d.n === 'number' &&
    typeof d.max === 'number' &&
    typeof d.counts === 'object' &&
    d.counts !== null &&
    Object.values(d.counts).every((c) => typeof c === 'number')
  );
}
