// A port of NAB v1.1 scoring (numenta/NAB nab/sweeper.py, optimizer.py, scorer.py, runner.normalize):
// probationary period, windows, scaled sigmoid, cost profiles, threshold optimised over every
// distinct anomaly score of the corpus, normalisation between the null and the perfect detector.

/** A NAB cost profile (config/profiles.json `CostMatrix`). */
export interface NabCostMatrix {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** One scored file: timestamps (ms), detector scores and label windows as [startMs, endMs]. */
export interface NabFileInput {
  name: string;
  timestamps: readonly number[];
  scores: readonly number[];
  windows: readonly (readonly [number, number])[];
}

/** A row that counts for scoring (after the probationary period). */
export interface NabSweepRow {
  score: number;
  /** Weighted sweep score: TP value inside a window, FP cost outside. */
  sweep: number;
  /** Global window id, or -1 outside every window. */
  window: number;
}

/** NAB's scaled sigmoid: 2·sigmoid(−5x) − 1, and −1 beyond x > 3. */
export function scaledSigmoid(x: number): number {
  if (x > 3) return -1;
  return 2 / (1 + Math.exp(5 * x)) - 1;
}

/** NAB's probationary length: min(floor(0.15·n), 0.15·5000). */
export function probationaryLength(n: number, probationPercent = 0.15): number {
  return Math.min(Math.floor(probationPercent * n), probationPercent * 5000);
}

/** Resolves label windows to row indices [left, right] (rows with left ≤ t ≤ right). */
export function windowIndices(
  timestamps: readonly number[],
  windows: readonly (readonly [number, number])[],
): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of windows) {
    let left = -1;
    let right = -1;
    for (let i = 0; i < timestamps.length; i++) {
      const t = timestamps[i]!;
      if (t >= start && t <= end) {
        if (left < 0) left = i;
        right = i;
      }
    }
    if (left >= 0) out.push([left, right]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * `Sweeper.calcSweepScore`: the weighted score each row would earn if it were a detection.
 * `windowBase` offsets window ids so that rows of several files can be pooled.
 */
export function sweepRows(
  file: NabFileInput,
  cost: NabCostMatrix,
  windowBase: number,
): { rows: NabSweepRow[]; windows: number } {
  const n = file.timestamps.length;
  const wins = windowIndices(file.timestamps, file.windows);
  const prob = probationaryLength(n);
  const maxTP = scaledSigmoid(-1);
  const rows: NabSweepRow[] = [];
  let w = 0;
  let prevRight = -1;
  let prevWidth = 0;
  for (let i = 0; i < n; i++) {
    const cur = wins[w];
    const inWin = cur !== undefined && i >= cur[0] && i <= cur[1];
    let sweep: number;
    if (inWin) {
      const width = cur[1] - cur[0] + 1;
      sweep = (scaledSigmoid(-(cur[1] - i + 1) / width) * cost.tpWeight) / maxTP;
    } else if (prevRight < 0) {
      sweep = -1 * cost.fpWeight;
    } else {
      sweep = scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1)) * cost.fpWeight;
    }
    if (i >= prob) rows.push({ score: file.scores[i]!, sweep, window: inWin ? windowBase + w : -1 });
    if (inWin && i === cur[1]) {
      prevRight = cur[1];
      prevWidth = cur[1] - cur[0] + 1;
      w++;
    }
  }
  return { rows, windows: wins.length };
}

/** Score of a set of rows at a given threshold (detections are rows with score ≥ threshold). */
export function scoreAtThreshold(
  rows: readonly NabSweepRow[],
  windowIds: readonly number[],
  cost: NabCostMatrix,
  threshold: number,
): { score: number; tp: number; fp: number; fn: number } {
  const best = new Map<number, number>();
  let fpSum = 0;
  let fp = 0;
  for (const r of rows) {
    if (r.score < threshold) continue;
    if (r.window < 0) {
      fpSum += r.sweep;
      fp++;
    } else {
      const b = best.get(r.window);
      if (b === undefined || r.sweep > b) best.set(r.window, r.sweep);
    }
  }
  let score = fpSum;
  let fn = 0;
  for (const id of windowIds) {
    const b = best.get(id);
    if (b === undefined) {
      score -= cost.fnWeight;
      fn++;
    } else score += b;
  }
  return { score, tp: best.size, fp, fn };
}

/**
 * `Sweeper.calcScoreByThreshold` + optimizer: the corpus score at every distinct anomaly score
 * (plus 1.1, "never fires"); returns the best threshold and its raw score.
 */
export function optimiseThreshold(
  rows: readonly NabSweepRow[],
  windowIds: readonly number[],
  cost: NabCostMatrix,
): { threshold: number; score: number } {
  const sorted = [...rows].sort((a, b) => b.score - a.score);
  const best = new Map<number, number>();
  for (const id of windowIds) best.set(id, -cost.fnWeight);
  let total = -cost.fnWeight * windowIds.length;
  let curThreshold = 1.1;
  let bestThreshold = 1.1;
  let bestScore = -Infinity;
  for (const r of sorted) {
    if (r.score !== curThreshold) {
      if (total > bestScore) {
        bestScore = total;
        bestThreshold = curThreshold;
      }
      curThreshold = r.score;
    }
    if (r.window < 0) total += r.sweep;
    else {
      const b = best.get(r.window)!;
      if (r.sweep > b) {
        total += r.sweep - b;
        best.set(r.window, r.sweep);
      }
    }
  }
  if (total > bestScore) {
    bestScore = total;
    bestThreshold = curThreshold;
  }
  return { threshold: bestThreshold, score: bestScore };
}

/** Result of scoring a detector on a corpus under one profile. */
export interface NabProfileResult {
  threshold: number;
  raw: number;
  normalised: number;
  perFile: { name: string; score: number; tp: number; fp: number; fn: number }[];
}

/** Scores a corpus under one profile: optimise the threshold, score each file, normalise. */
export function scoreCorpus(files: readonly NabFileInput[], cost: NabCostMatrix): NabProfileResult {
  const all: NabSweepRow[] = [];
  const perFileRows: { name: string; rows: NabSweepRow[]; ids: number[] }[] = [];
  let base = 0;
  for (const f of files) {
    const { rows, windows } = sweepRows(f, cost, base);
    const ids = Array.from({ length: windows }, (_, k) => base + k);
    base += windows;
    for (const r of rows) all.push(r);
    perFileRows.push({ name: f.name, rows, ids });
  }
  const allIds = Array.from({ length: base }, (_, k) => k);
  const { threshold, score } = optimiseThreshold(all, allIds, cost);
  const perFile = perFileRows.map((p) => ({
    name: p.name,
    ...scoreAtThreshold(p.rows, p.ids, cost, threshold),
  }));
  const nullScore = -cost.fnWeight * base;
  const perfect = cost.tpWeight * base;
  return { threshold, raw: score, normalised: (100 * (score - nullScore)) / (perfect - nullScore), perFile };
}
