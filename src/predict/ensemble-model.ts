import type { HistoryView, PointModel } from './forecaster.js';
import { HoltWintersModel } from './holt-winters.js';
import { LastValueModel } from './last-value.js';
import { RecentMedianModel } from './recent-median.js';
import { detectPeriods } from './period-detection.js';
import type { PeriodCandidate } from './period-detection.js';
import { HORIZON_RATIO, ORIGINS_PER_HORIZON, originStride } from './residual-quantiles.js';
import { SeasonalNaiveModel } from './seasonal-naive.js';

/** Options of {@link EnsembleModel}. */
export interface EnsembleOptions {
  /** Fixed season length in steps; when omitted it is detected from the data. */
  period?: number;
  /** Longest period searched for. @default history capacity / 2 */
  maxPeriod?: number;
  /** Longest horizon whose errors weight the members. @default 64 */
  maxHorizon?: number;
  /** Weight exponent of the combination: member weight ∝ (recent mean absolute error)^−power. @default 2 */
  power?: number;
  /** Re-run period detection every this many values once warmed up. @default 1440 */
  detectEvery?: number;
  /**
   * Memory of the error averages, in resolved errors per horizon bucket (the newest error weighs
   * 1 / memory). @default 200
   */
  errorMemory?: number;
  /** Ratio of successive error-tracking horizons (1, r, r², …). @default 4 */
  horizonRatio?: number;
  /**
   * Forecast origins sampled per horizon length: the errors at horizon h are measured from a
   * forecast made every max(1, h / this) steps (the member choice needs denser origins than the
   * intervals). @default 8
   */
  originsPerHorizon?: number;
  /**
   * The last value is the default forecast: another candidate is chosen at a horizon only when its
   * recent mean absolute error there is at least this fraction below the last value's. @default 0.1
   */
  lastValueMargin?: number;
  /** Values in the robust-level (recent median) member. @default 15 */
  medianWindow?: number;
}

/** Errors a candidate needs at a horizon before it can be weighted or selected there. */
const MIN_ERRORS = 10;

/** Horizon buckets and their bookkeeping, derived from the settings only. */
interface Layout {
  hs: Int32Array;
  /** Origin stride per bucket (a divisor of its horizon). */
  stride: Int32Array;
  /** Weight of the newest error per bucket: stride / memory. */
  alphaB: Float64Array;
  /** Resolved errors a candidate needs per bucket before it is weighted or selected. */
  minN: Float64Array;
  /** Start of each bucket's pending slots. */
  offset: Int32Array;
  pendingSize: number;
  /** Nearest bucket on a log scale per integer horizon. */
  bucketOf: Int8Array;
  /** Scratch: this step's pending slot per bucket (−1: not an origin of that bucket this step). */
  slot: Int32Array;
}

const layouts = new Map<string, Layout>();

function layout(maxH: number, ratio: number, originsPer: number, memory: number): Layout {
  const key = `${maxH}/${ratio}/${originsPer}/${memory}`;
  const cached = layouts.get(key);
  if (cached) return cached;
  const list: number[] = [];
  for (let h = 1; ; h *= ratio) {
    list.push(h);
    if (h >= maxH) break;
  }
  const hs = Int32Array.from(list);
  const stride = Int32Array.from(list, (h) => originStride(h, originsPer));
  const offset = new Int32Array(hs.length);
  let total = 0;
  list.forEach((h, b) => {
    offset[b] = total;
    total += h / stride[b]!;
  });
  const top = 2 * list[list.length - 1]! + 1;
  const bucketOf = new Int8Array(top);
  for (let h = 1; h < top; h++) {
    let best = 0;
    for (let b = 1; b < list.length; b++)
      if (Math.abs(Math.log(h / list[b]!)) < Math.abs(Math.log(h / list[best]!)) - 1e-12) best = b;
    bucketOf[h] = best;
  }
  const l: Layout = {
    hs,
    stride,
    alphaB: Float64Array.from(stride, (st) => Math.min(1, st / Math.max(1, memory))),
    minN: Float64Array.from(stride, (st) => Math.max(3, Math.ceil(MIN_ERRORS / st))),
    offset,
    pendingSize: total,
    bucketOf,
    slot: new Int32Array(hs.length),
  };
  layouts.set(key, l);
  return l;
}

interface Member {
  model: PointModel;
  /** Preference when no member has a track record yet (lower first). */
  rank: number;
}

/**
 * An ensemble of point models: last value, recent median, damped Holt, and — once a period is
 * known (given or detected) — seasonal naive, a three-season seasonal mean and seasonal
 * Holt–Winters. Every member, and their weighted combination, keeps an out-of-sample error record
 * *per horizon* (the forecast made h steps ago against the value that arrived). At each horizon
 * the forecast is the candidate — one member, or the combination weighted by inverse error — with
 * the lowest recent mean absolute error, where the last value is the default that others must
 * beat by a margin. A series where the last value is best therefore converges to the last value
 * at that horizon, while a seasonal one uses its seasonal members. Degrades gracefully: with one
 * value it is the last value.
 *
 * Per value: O(members × horizons) with no allocation; the error records of all candidates live
 * in three flat typed arrays (candidate 0 is the combination, candidate i + 1 member i).
 */
export class EnsembleModel implements PointModel {
  readonly name = 'ensemble';
  readonly #o: {
    period: number | undefined;
    maxPeriod: number | undefined;
    power: number;
    detectEvery: number;
    margin: number;
  };
  /** Horizon layout, shared by every ensemble with the same settings (stays in cache). */
  readonly #L: Layout;
  /** Step at which each bucket's cached member predictions were made. */
  #cacheAt = new Float64Array(0);
  readonly #members: Member[] = [];
  /** Pending forecasts per candidate: [c · pendingSize + slot]. */
  #pend = new Float32Array(0);
  /**
   * Exponentially weighted mean absolute error per candidate and bucket at [c · nb + b], and the
   * number of errors resolved at [nOff + c · nb + b].
   */
  #mae = new Float64Array(0);
  /** Start of the resolved-error counts in `#mae` (candidates × buckets). */
  #nOff = 0;
  #period = 0;
  #candidates: PeriodCandidate[] = [];
  #nextDetect = 32;
  #seen = 0;
  /** Member predictions at the bucket horizons for the newest value: [b · M + i]. */
  #cache = new Float64Array(0);
  /** Normalised combination weights per bucket: [b · M + i]. */
  #bw = new Float64Array(0);
  /** Chosen candidate per bucket: member index, M for the combination, −1 for none yet. */
  #sel = new Int32Array(0);
  #w = new Float64Array(0);

  constructor(options: EnsembleOptions = {}) {
    const memory = options.errorMemory ?? 200;
    this.#o = {
      period: options.period,
      maxPeriod: options.maxPeriod,
      power: options.power ?? 2,
      detectEvery: options.detectEvery ?? 1440,
      margin: Math.min(1, Math.max(0, options.lastValueMargin ?? 0.1)),
    };
    const maxH = Math.max(1, Math.floor(options.maxHorizon ?? 64));
    const ratio = Math.max(2, Math.floor(options.horizonRatio ?? HORIZON_RATIO));
    const originsPer = options.originsPerHorizon ?? 2 * ORIGINS_PER_HORIZON;
    this.#L = layout(maxH, ratio, originsPer, memory);
    this.#cacheAt = new Float64Array(this.#L.hs.length).fill(-1);
    this.#setMembers(
      [
        { model: new LastValueModel(), rank: 3 },
        { model: new RecentMedianModel(options.medianWindow ?? 15), rank: 3 },
        { model: new HoltWintersModel({ period: 0, damped: true }), rank: 2 },
      ],
      [],
    );
  }

  /** The season length in use (0 = none yet). */
  get period(): number {
    return this.#period;
  }

  /** The latest period-detection candidates. */
  get candidates(): readonly PeriodCandidate[] {
    return this.#candidates;
  }

  /** Member names with their current weights at horizon `h` (a selected single member has weight 1). */
  weights(h: number, history: HistoryView): { name: string; weight: number }[] {
    this.#fill(h, history);
    return this.#members.map((m, i) => ({ name: m.model.name, weight: this.#w[i] ?? 0 }));
  }

  #bucketFor(h: number): number {
    if (!(h >= 1)) return 0;
    const i = Math.floor(h);
    return i < this.#L.bucketOf.length ? this.#L.bucketOf[i]! : this.#L.hs.length - 1;
  }

  /**
   * Replaces the member list. `keep[i]` is the old index of new member i whose error record is
   * carried over (−1 or missing: a new member, no record yet); the combination's record is kept.
   */
  #setMembers(members: Member[], keep: readonly number[]): void {
    const nb = this.#L.hs.length;
    const ps = this.#L.pendingSize;
    const c = members.length + 1;
    const pend = new Float32Array(c * ps).fill(Number.NaN);
    const nOff = c * nb;
    const mae = new Float64Array(2 * nOff);
    const copy = (from: number, to: number): void => {
      pend.set(this.#pend.subarray(from * ps, (from + 1) * ps), to * ps);
      mae.set(this.#mae.subarray(from * nb, (from + 1) * nb), to * nb);
      const o = this.#nOff;
      mae.set(this.#mae.subarray(o + from * nb, o + (from + 1) * nb), nOff + to * nb);
    };
    if (this.#pend.length > 0) {
      copy(0, 0);
      keep.forEach((old, i) => {
        if (old >= 0) copy(old + 1, i + 1);
      });
    }
    this.#pend = pend;
    this.#mae = mae;
    this.#nOff = nOff;
    this.#members.length = 0;
    this.#members.push(...members);
    const m = members.length;
    this.#cache = new Float64Array(nb * m).fill(Number.NaN);
    this.#bw = new Float64Array(nb * m);
    this.#sel = new Int32Array(nb).fill(-1);
    this.#cacheAt = new Float64Array(nb).fill(-1);
    this.#w = new Float64Array(m);
  }

  #setPeriod(p: number): void {
    this.#period = p;
    const members: Member[] = [];
    const keep: number[] = [];
    this.#members.forEach((m, i) => {
      if (m.rank >= 2) {
        members.push(m);
        keep.push(i);
      }
    });
    if (p > 1) {
      members.push(
        { model: new SeasonalNaiveModel(p), rank: 1 },
        { model: new SeasonalNaiveModel(p, 3), rank: 1 },
        { model: new HoltWintersModel({ period: p, damped: true }), rank: 0 },
      );
    }
    this.#setMembers(members, keep);
  }

  /** Resolves the forecasts candidate `c` made for this step against the actual `x`. */
  #resolve(c: number, x: number): void {
    const nb = this.#L.hs.length;
    const base = c * this.#L.pendingSize;
    for (let b = 0; b < nb; b++) {
      const slot = this.#L.slot[b]!;
      if (slot < 0) continue;
      const p = this.#pend[base + slot]!;
      if (p !== p) continue;
      const k = c * nb + b;
      const n = this.#mae[this.#nOff + k]!;
      const alpha = this.#L.alphaB[b]!;
      const a = n < 1 / alpha ? 1 / (n + 1) : alpha;
      const m = this.#mae[k]!;
      this.#mae[k] = m + a * (Math.abs(x - p) - m);
      this.#mae[this.#nOff + k] = n + 1;
    }
  }

  observe(x: number, history: HistoryView): void {
    const t = this.#seen;
    this.#seen++;
    if (this.#o.period !== undefined && this.#period === 0 && this.#o.period > 1)
      this.#setPeriod(this.#o.period);
    if (this.#o.period === undefined && this.#seen >= this.#nextDetect) {
      const values = history.toArray();
      const cap = this.#o.maxPeriod ?? Math.floor(values.length / 2);
      this.#candidates = detectPeriods(values, { maxPeriod: cap });
      const best = this.#candidates[0]?.period ?? 0;
      if (best !== this.#period) this.#setPeriod(best);
      this.#nextDetect = this.#seen < this.#o.detectEvery ? this.#seen * 2 : this.#seen + this.#o.detectEvery;
    }
    const ms = this.#members;
    const nm = ms.length;
    const hs = this.#L.hs;
    const nb = hs.length;
    const ps = this.#L.pendingSize;
    let active = false;
    for (let b = 0; b < nb; b++) {
      const st = this.#L.stride[b]!;
      const on = t % st === 0;
      this.#L.slot[b] = on ? this.#L.offset[b]! + (((t / st) | 0) % (hs[b]! / st)) : -1;
      active ||= on;
    }
    for (let c = 0; c <= nm; c++) this.#resolve(c, x);
    for (let i = 0; i < nm; i++) ms[i]!.model.observe(x, history);
    if (!active) return;
    const power = this.#o.power;
    const mae = this.#mae;
    const nOff = this.#nOff;
    for (let b = 0; b < nb; b++) {
      const slot = this.#L.slot[b]!;
      if (slot < 0) continue;
      // This bucket's origin: record every member's forecast, reweight and reselect.
      const minN = this.#L.minN[b]!;
      let sum = 0;
      let combo = 0;
      let bestI = -1;
      let bestE = Infinity;
      let rankI = -1;
      for (let i = 0; i < nm; i++) {
        const p = ms[i]!.model.predict(hs[b]!, history);
        const finite = Number.isFinite(p);
        this.#cache[b * nm + i] = p;
        this.#pend[(i + 1) * ps + slot] = finite ? p : Number.NaN;
        let v = 0;
        if (finite) {
          if (rankI < 0 || ms[i]!.rank < ms[rankI]!.rank) rankI = i;
          const k = (i + 1) * nb + b;
          if (mae[nOff + k]! >= minN) {
            const e = mae[k]!;
            v = power === 2 ? 1 / (e * e + 1e-300) : Math.pow(e + 1e-300, -power);
            if (!Number.isFinite(v)) v = 1e300;
            if (e < bestE) {
              bestE = e;
              bestI = i;
            }
            sum += v;
            combo += v * p;
          }
        }
        this.#bw[b * nm + i] = v;
      }
      this.#cacheAt[b] = this.#seen;
      if (sum > 0) {
        for (let i = 0; i < nm; i++) this.#bw[b * nm + i] = this.#bw[b * nm + i]! / sum;
        combo /= sum;
      } else combo = rankI >= 0 ? this.#cache[b * nm + rankI]! : Number.NaN;
      this.#pend[slot] = Number.isFinite(combo) ? combo : Number.NaN;
      // Selection: the candidate with the lowest recent error at this horizon …
      let sel: number;
      if (bestI < 0) sel = sum > 0 ? nm : rankI;
      else if (mae[nOff + b]! >= minN && mae[b]! < bestE) {
        sel = nm;
        bestE = mae[b]!;
      } else sel = bestI;
      // … but the last value (member 0) is the default: another candidate must beat it clearly.
      if (sel !== 0 && mae[nOff + nb + b]! >= minN && bestE > (1 - this.#o.margin) * mae[nb + b]!) sel = 0;
      this.#sel[b] = sel;
    }
  }

  /** Fills the scratch weights for horizon `h` (bucket `b`'s selection); returns the bucket. */
  #fill(h: number, history: HistoryView): number {
    void history;
    const nm = this.#members.length;
    const b = this.#bucketFor(h);
    const sel = this.#sel[b] ?? -1;
    for (let i = 0; i < nm; i++) this.#w[i] = sel === nm ? this.#bw[b * nm + i]! : i === sel ? 1 : 0;
    return b;
  }

  predict(h: number, history: HistoryView): number {
    const b = this.#bucketFor(h);
    const sel = this.#sel[b] ?? -1;
    const ms = this.#members;
    const nm = ms.length;
    if (sel < 0) return Number.NaN;
    // At a bucket horizon right after its origin step, the member forecasts are cached.
    const cached = this.#L.hs[b] === h && this.#cacheAt[b] === this.#seen;
    if (sel < nm) {
      const p = cached ? this.#cache[b * nm + sel]! : ms[sel]!.model.predict(h, history);
      if (Number.isFinite(p)) return p;
    }
    let s = 0;
    let sw = 0;
    for (let i = 0; i < nm; i++) {
      const w = this.#bw[b * nm + i]!;
      if (w <= 0) continue;
      const p = cached ? this.#cache[b * nm + i]! : ms[i]!.model.predict(h, history);
      if (!Number.isFinite(p)) continue;
      s += w * p;
      sw += w;
    }
    return sw > 0 ? s / sw : Number.NaN;
  }
}
