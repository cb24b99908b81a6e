/** Options of {@link ResonanceNovelty}. */
export interface ResonanceNoveltyOptions {
  /** Downsampled points per feature window. @default 8 */
  window?: number;
  /** Feature windows per learning period: sets the downsampling step. @default 13 */
  windowsPerLearning?: number;
  /** Quantisation levels of the normalised downsampled value. @default 80 */
  levels?: number;
  /** A downsampled value this close (in normalised units) to the running median snaps to it. @default 0.075 */
  snap?: number;
  /** Vigilance used to estimate the initial vigilance from the learning windows. @default 0.8 */
  initialVigilance?: number;
  /** Bound on the number of categories (memory and time per point). @default 256 */
  maxCategories?: number;
  /**
   * Share of the learning period's range added at each end of the normalisation range (later
   * values beyond it widen it). @default 0.5
   */
  margin?: number;
}

/** Orthonormal multi-level Haar transform of a power-of-two length array (in place, into `out`). */
function haar(x: Float64Array, out: Float64Array, tmp: Float64Array): void {
  let n = x.length;
  out.set(x);
  const r = Math.SQRT1_2;
  while (n > 1) {
    const h = n >> 1;
    for (let i = 0; i < h; i++) {
      tmp[i] = (out[2 * i]! + out[2 * i + 1]!) * r;
      tmp[h + i] = (out[2 * i]! - out[2 * i + 1]!) * r;
    }
    for (let i = 0; i < n; i++) out[i] = tmp[i]!;
    n = h;
  }
}

/** Scales `a` in place to [0, 1] by its own min and max (left as is when flat). */
function minMax(a: Float64Array): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of a) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const w = hi - lo;
  for (let i = 0; i < a.length; i++) a[i] = w > 0 ? (a[i]! - lo) / w : a[i]! - lo;
}

/** Cosine-like similarity of two feature vectors (ARTime's ordering of the learning windows). */
function similarity(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  const na = Math.sqrt(aa);
  const nb = Math.sqrt(bb);
  if (na === 0) return 1 - nb;
  if (nb === 0) return 1 - na;
  return ab / (na * nb);
}

/**
 * Dual-vigilance fuzzy ART over complement-coded features in [0, 1]: a sample resonates with
 * (and refines) every category it matches at or above the upper vigilance; a best match between
 * the two vigilances founds a new category of the same cluster; below the lower vigilance it
 * founds a new cluster — the novelty signal. Match is `(|x∧w|/|w|)^3 · e^2`, where `e` is the
 * same ratio over the last feature (the current level) and its complement.
 */
class DualVigilanceArt {
  readonly #dim: number;
  readonly #cap: number;
  #w: Float64Array;
  #wNorm: Float64Array;
  #m: Float64Array;
  #me: Float64Array;
  #used: Float64Array;
  #tick = 0;
  readonly #x: Float64Array;
  n = 0;
  lower = 0;
  upper = 0;
  /** Best match and its level similarity of the last {@link train} call. */
  match = 0;
  levelMatch = 0;

  constructor(dim: number, cap: number) {
    this.#dim = dim;
    this.#cap = Math.max(2, Math.floor(cap));
    const initial = Math.min(this.#cap, 16);
    this.#w = new Float64Array(initial * 2 * dim);
    this.#wNorm = new Float64Array(initial);
    this.#m = new Float64Array(initial);
    this.#me = new Float64Array(initial);
    this.#used = new Float64Array(initial);
    this.#x = new Float64Array(2 * dim);
  }

  /** Presents `f`; returns true when it founds a new cluster (or, not learning, matches nothing). */
  train(f: Float64Array, learn: boolean): boolean {
    const d = this.#dim;
    const d2 = 2 * d;
    const x = this.#x;
    for (let i = 0; i < d; i++) {
      const v = Math.min(1, Math.max(0, f[i]!));
      x[i] = v;
      x[d + i] = 1 - v;
    }
    if (this.n === 0) {
      this.match = 0;
      this.levelMatch = 0;
      if (learn) this.#add(x);
      return true;
    }
    const w = this.#w;
    let best = -1;
    for (let j = 0; j < this.n; j++) {
      const o = j * d2;
      let s = 0;
      for (let i = 0; i < d2; i++) s += Math.min(x[i]!, w[o + i]!);
      const we = w[o + d - 1]! + w[o + d2 - 1]!;
      const ee = Math.min(x[d - 1]!, w[o + d - 1]!) + Math.min(x[d2 - 1]!, w[o + d2 - 1]!);
      const fs = s / (this.#wNorm[j]! || 0.001);
      const es = we > 0 ? ee / we : 1;
      this.#m[j] = fs * fs * fs * es * es;
      this.#me[j] = es;
      if (best < 0 || this.#m[j]! > this.#m[best]!) best = j;
    }
    this.match = this.#m[best]!;
    this.levelMatch = this.#me[best]!;
    this.#tick++;
    if (learn) this.#used[best] = this.#tick;
    if (!learn) return true;
    if (this.match < this.lower) {
      this.#add(x);
      return true;
    }
    if (this.match < this.upper) {
      this.#add(x);
      return false;
    }
    // Refine every category at or above the upper vigilance (fast commit: w ← x ∧ w).
    for (let j = 0; j < this.n; j++) {
      if (this.#m[j]! < this.upper) continue;
      const o = j * d2;
      let s = 0;
      for (let i = 0; i < d2; i++) {
        const v = Math.min(x[i]!, w[o + i]!);
        w[o + i] = v;
        s += v;
      }
      this.#wNorm[j] = s;
    }
    return false;
  }

  /**
   * Maps the raw-level dims [from, to) of every category through `x ↦ a·x + b` (an increasing map
   * of [0, 1] into itself, used when the normalisation range widens): each category is a box, its
   * lower corner in the first half and the complement of its upper corner in the second.
   */
  rescale(from: number, to: number, a: number, b: number): void {
    const d = this.#dim;
    for (let j = 0; j < this.n; j++) {
      const o = j * 2 * d;
      let s = 0;
      for (let i = from; i < to; i++) {
        this.#w[o + i] = a * this.#w[o + i]! + b;
        this.#w[o + d + i] = 1 - (a * (1 - this.#w[o + d + i]!) + b);
      }
      for (let i = 0; i < 2 * d; i++) s += this.#w[o + i]!;
      this.#wNorm[j] = s;
    }
  }

  /** Number of categories. */
  get categories(): number {
    return this.n;
  }

  #add(x: Float64Array): void {
    if (this.n >= this.#cap) {
      // Full: the new category replaces the one that has been the best match least recently.
      let lru = 0;
      for (let j = 1; j < this.n; j++) if (this.#used[j]! < this.#used[lru]!) lru = j;
      this.#put(lru, x);
      return;
    }
    if (this.n === this.#wNorm.length) {
      // Grow by doubling up to the cap: memory follows the categories actually founded.
      const size = Math.min(this.#cap, this.n * 2);
      const grow = (a: Float64Array, k: number): Float64Array => {
        const b = new Float64Array(size * k);
        b.set(a);
        return b;
      };
      this.#w = grow(this.#w, 2 * this.#dim);
      this.#wNorm = grow(this.#wNorm, 1);
      this.#m = grow(this.#m, 1);
      this.#me = grow(this.#me, 1);
      this.#used = grow(this.#used, 1);
    }
    this.#put(this.n++, x);
  }

  #put(j: number, x: Float64Array): void {
    const o = j * 2 * this.#dim;
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      this.#w[o + i] = x[i]!;
      s += x[i]!;
    }
    this.#wNorm[j] = s;
    this.#used[j] = this.#tick;
  }
}

/**
 * An adaptive-resonance novelty cue in the manner of ARTime (Hampton, 2021; NAB 74.85; written here
 * from the published algorithm, its reference implementation ARTimeNAB.jl read, not copied): the
 * stream is downsampled (each block keeps its extreme when that departs from the block mean),
 * normalised by the range seen so far (no look-ahead), quantised and snapped to the running
 * median; each window of the last `window` downsampled values becomes a feature vector (its
 * min–max-normalised Haar transform and its raw levels) clustered by dual-vigilance fuzzy ART. A
 * point scores when its window founds a new cluster outside the masks that follow a new cluster
 * or a detection, with a confidence from how far the best match fell below the vigilances. The
 * vigilances start from the learning windows and then adapt to the recent matches. Online,
 * causal, deterministic; memory bounded by `maxCategories`.
 */
export class ResonanceNovelty {
  readonly #window: number;
  readonly #step: number;
  readonly #trend: number;
  readonly #mask: number;
  readonly #levels: number;
  readonly #snap: number;
  readonly #initialVigilance: number;
  readonly #art: DualVigilanceArt;
  readonly #block: Float64Array;
  readonly #median: Int32Array;
  readonly #fWin: Float64Array;
  readonly #shape: Float64Array;
  readonly #coef: Float64Array;
  readonly #tmp: Float64Array;
  readonly #learnDs: number[] = [];
  readonly #margin: number;
  #lo = 0;
  #hi = 0;
  readonly #simWin: Float64Array;
  readonly #diffWin: Float64Array;
  #simHead = 0;
  #diffHead = 0;
  #points = 0;
  #last = 0;
  #dsi = 0;
  #movingAverage = 0;
  #min = Infinity;
  #max = -Infinity;
  #medianCount = 0;
  #lastAnomaly = -Infinity;
  #lastAnomalySim = 0;
  #lastRhoUpdate = 0;
  #maskAfterCategory = false;
  #noNewCluster = 0;
  #matchSum = 0;
  #matchCount = 0;
  #anomalySimSum = 0;
  #anomalySimCount = 0;
  #anomalySimLast = 0;

  /** @param learningPoints points of the learning period (at least 10) */
  constructor(learningPoints: number, options: ResonanceNoveltyOptions = {}) {
    const pos = (v: number | undefined, d: number): number =>
      v !== undefined && Number.isFinite(v) && v > 0 ? v : d;
    const learn = Math.max(10, Math.floor(learningPoints));
    this.#window = 1 << Math.round(Math.log2(Math.max(2, pos(options.window, 8))));
    const perLearning = pos(options.windowsPerLearning, 13);
    this.#step = Math.max(1, Math.round(Math.floor(learn / (this.#window * perLearning))));
    this.#trend = Math.max(this.#window + 2, Math.floor(learn / this.#step));
    this.#mask = Math.round(this.#window * 1.5);
    this.#levels = Math.floor(pos(options.levels, 80));
    this.#snap = Math.max(0, options.snap ?? 0.075);
    this.#initialVigilance = Math.min(0.99, pos(options.initialVigilance, 0.8));
    this.#art = new DualVigilanceArt(2 * this.#window, Math.floor(pos(options.maxCategories, 256)));
    this.#block = new Float64Array(this.#step);
    this.#median = new Int32Array(this.#levels + 1);
    this.#fWin = new Float64Array(this.#window);
    this.#shape = new Float64Array(this.#window);
    this.#coef = new Float64Array(this.#window);
    this.#tmp = new Float64Array(this.#window);
    this.#simWin = new Float64Array((this.#trend >> 1) + 1).fill(1);
    this.#diffWin = new Float64Array(this.#trend + 1);
    this.#margin = Math.max(0, options.margin ?? 0.5);
  }

  /** Categories founded so far (at most `maxCategories`). */
  get categories(): number {
    return this.#art.categories;
  }

  /**
   * Scores a value in [0, 1] against the past (0 while learning; non-zero only on a point that
   * completes a block), then learns it. A non-finite value repeats the last one.
   */
  update(x: number): number {
    const v = Number.isFinite(x) ? x : this.#last;
    this.#last = v;
    this.#block[this.#points % this.#step] = v;
    this.#points++;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
    if (this.#points % this.#step !== 0) return 0;
    const ds = this.#downsample();
    if (this.#dsi < this.#trend) {
      // Learning: keep the downsampled values; at the end, fix the normalisation range from
      // everything seen, then build, cluster and replay the learning windows.
      this.#learnDs.push(ds);
      if (++this.#dsi < this.#trend) return 0;
      const m = (this.#max - this.#min) * this.#margin;
      this.#lo = this.#min - m;
      this.#hi = this.#max + m;
      this.#dsi = 0;
      const features: Float64Array[] = [];
      for (const x of this.#learnDs) {
        features.push(this.#features(x));
        this.#dsi++;
      }
      this.#learnDs.length = 0;
      const rho = this.#initialRho(features);
      this.#art.lower = rho;
      this.#art.upper = rho;
      for (let k = 0; k < features.length; k++) this.#detect(features[k]!, k + 1);
      return 0;
    }
    if (this.#min < this.#lo || this.#max > this.#hi) this.#widen();
    const s = this.#detect(this.#features(ds), ++this.#dsi);
    return Number.isFinite(s) ? Math.min(1, Math.max(0, s)) : 0;
  }

  /** Widens the normalisation range to all values seen, mapping everything learnt along. */
  #widen(): void {
    const w0 = this.#hi - this.#lo;
    const lo = Math.min(this.#lo, this.#min);
    const hi = Math.max(this.#hi, this.#max);
    const w1 = hi - lo;
    if (!(w1 > 0) || !(w0 > 0)) {
      this.#lo = lo;
      this.#hi = hi;
      return;
    }
    const a = w0 / w1;
    const b = (this.#lo - lo) / w1;
    this.#lo = lo;
    this.#hi = hi;
    const win = this.#window;
    this.#art.rescale(win, 2 * win, a, b);
    for (let k = 0; k < win; k++) this.#fWin[k] = a * this.#fWin[k]! + b;
    const old = Int32Array.from(this.#median);
    this.#median.fill(0);
    const L = this.#levels;
    for (let k = 0; k <= L; k++) {
      const c = old[k]!;
      if (c > 0) {
        const nk = Math.min(L, Math.max(0, Math.round((a * (k / L) + b) * L)));
        this.#median[nk]! += c;
      }
    }
  }

  /** The block's downsampled value: its extreme when that departs from the mean, else the mean. */
  #downsample(): number {
    const b = this.#block;
    let sum = 0;
    let hi = -Infinity;
    let lo = Infinity;
    for (const x of b) {
      sum += x;
      if (x > hi) hi = x;
      if (x < lo) lo = x;
    }
    const mean = sum / b.length;
    if (this.#dsi === 0) this.#movingAverage = mean;
    this.#movingAverage = (this.#movingAverage + mean) / 2;
    let ds = Math.abs(hi - this.#movingAverage) < Math.abs(lo - this.#movingAverage) ? lo : hi;
    if (Math.abs(ds - mean) < 0.1 * Math.abs(mean)) ds = mean;
    return ds;
  }

  /** The feature vector of the window ending with the downsampled value `ds`. */
  #features(ds: number): Float64Array {
    const range = this.#hi - this.#lo;
    let n = range > 0 ? (ds - this.#lo) / range : 0;
    n = Math.min(1, Math.max(0, n));
    const level = Math.round(n * this.#levels);
    n = level / this.#levels;
    this.#median[level]!++;
    this.#medianCount++;
    let acc = 0;
    let med = 0;
    const half = this.#medianCount / 2;
    for (let k = 0; k <= this.#levels; k++) {
      acc += this.#median[k]!;
      if (acc >= half) {
        med = k / this.#levels;
        break;
      }
    }
    if (Math.abs(n - med) < this.#snap) n = med;
    const w = this.#fWin;
    w.copyWithin(0, 1);
    w[w.length - 1] = n;
    const out = new Float64Array(2 * this.#window);
    if (this.#dsi + 1 >= this.#window) {
      this.#shape.set(w);
      minMax(this.#shape);
      haar(this.#shape, this.#coef, this.#tmp);
      minMax(this.#coef);
      out.set(this.#coef, 0);
      out.set(w, this.#window);
    }
    return out;
  }

  /** Initial vigilance: mean best match of the later learning windows, presented most typical last. */
  #initialRho(features: readonly Float64Array[]): number {
    const fs = features.slice(this.#window - 1);
    if (fs.length < 4) return this.#initialVigilance;
    const sums = fs.map((a) => fs.reduce((acc, b) => acc + (a === b ? 1 : similarity(a, b)), 0));
    const order = fs.map((_, k) => k).sort((a, b) => sums[a]! - sums[b]! || a - b);
    const art = new DualVigilanceArt(2 * this.#window, fs.length + 1);
    art.lower = this.#initialVigilance;
    art.upper = this.#initialVigilance;
    let total = 0;
    let count = 0;
    const from = Math.floor(this.#trend / 2) - 1;
    for (let k = 0; k < order.length; k++) {
      art.train(fs[order[k]!]!, true);
      if (k >= from) {
        total += art.match;
        count++;
      }
    }
    return count > 0 ? total / count : this.#initialVigilance;
  }

  #detect(f: Float64Array, i: number): number {
    const art = this.#art;
    const sinceAnomaly = i - this.#lastAnomaly;
    const updateAfterAnomaly = sinceAnomaly === this.#mask;
    const updateForTrend = i - this.#lastRhoUpdate >= this.#trend >> 1;
    const maskAfterAnomaly = sinceAnomaly <= this.#mask;
    if (i > this.#trend + this.#mask && this.#maskAfterCategory && this.#noNewCluster >= this.#mask)
      this.#maskAfterCategory = false;
    const newCluster = art.train(f, i >= this.#window);
    this.#noNewCluster = newCluster ? 0 : this.#noNewCluster + 1;
    const a = art.match;
    this.#matchSum += a;
    this.#matchCount++;
    this.#simWin[this.#simHead] = a;
    this.#simHead = (this.#simHead + 1) % this.#simWin.length;
    this.#diffWin[this.#diffHead] = art.upper - a;
    this.#diffHead = (this.#diffHead + 1) % this.#diffWin.length;
    if (sinceAnomaly < this.#mask && this.#anomalySimCount > 0 && a < this.#anomalySimLast) {
      this.#anomalySimSum += a - this.#anomalySimLast;
      this.#anomalySimLast = a;
    }
    const masking = this.#maskAfterCategory || maskAfterAnomaly;
    const belowLast = a < this.#lastAnomalySim * (maskAfterAnomaly ? 0.9 : 0.7);
    let score = 0;
    if (i > this.#trend && newCluster && (!masking || belowLast)) {
      score = this.#confidence(a, art.levelMatch);
      this.#anomalySimSum += a;
      this.#anomalySimCount++;
      this.#anomalySimLast = a;
      this.#lastAnomalySim = a;
      this.#lastAnomaly = i;
    }
    this.#maskAfterCategory ||= newCluster;
    if (i > this.#trend && (updateAfterAnomaly || updateForTrend)) this.#adaptVigilance(i);
    return score;
  }

  #adaptVigilance(i: number): void {
    const art = this.#art;
    let minSim = Infinity;
    for (const s of this.#simWin) if (s < minSim) minSim = s;
    const upper = Math.min(0.97, this.#matchSum / this.#matchCount);
    let lower: number;
    if (art.lower <= minSim) lower = art.lower + (minSim - art.lower) * 0.19;
    else {
      let decr = 0;
      if (i > this.#trend * 2) {
        let s = 0;
        let c = 0;
        for (const d of this.#diffWin)
          if (d > 0.05) {
            s += Math.min(0.37, d);
            c++;
          }
        if (c > 0) decr = s / c;
      }
      lower = art.lower - Math.max(0.01, decr) / 2;
      if (this.#anomalySimCount > 0) lower = Math.max(this.#anomalySimSum / this.#anomalySimCount, lower);
    }
    art.lower = Math.min(upper, lower);
    art.upper = upper;
    this.#lastRhoUpdate = i;
    this.#maskAfterCategory = true;
  }

  #confidence(sim: number, levelSim: number): number {
    const s = Math.min(0.999, sim);
    const ub = (1 - s - (1 - this.#art.upper)) / (1 - s);
    const lb = (1 - s - (1 - this.#art.lower)) / (1 - s);
    return Math.min(1, ub * 0.35 + lb * 0.65 + (1 - levelSim) * 1.5);
  }
}
