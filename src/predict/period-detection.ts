import { fft, nextPow2 } from './fft.js';

/** A detected period with its autocorrelation. */
export interface PeriodCandidate {
  /** Period in steps. */
  period: number;
  /** Autocorrelation at the period (bias-corrected), in (0, 1]. */
  strength: number;
}

/** Options of {@link detectPeriods}. */
export interface PeriodDetectionOptions {
  /** Shortest period considered. @default 2 */
  minPeriod?: number;
  /** Longest period considered; at least two full cycles must be in the data. @default n / 2 */
  maxPeriod?: number;
  /** An autocorrelation peak must exceed this to count. @default 0.2 */
  minStrength?: number;
  /**
   * Significance: a peak must exceed this many standard errors of the autocorrelation under a
   * short-memory null (Bartlett: √((1 + 2 Σ_{j≤q} r_j²)/(n − k)), q = `nullLags`). Strongly
   * autocorrelated noise — a random walk — has a large standard error and yields no period.
   * @default 3
   */
  zThreshold?: number;
  /** Lags in the Bartlett null (the noise's assumed memory). @default 10 */
  nullLags?: number;
  /** At most this many candidates, strongest first. @default 3 */
  maxCandidates?: number;
}

/**
 * Autocorrelation (via FFT, bias-corrected) of the linearly detrended values, lags 0…maxLag.
 * O(n log n).
 */
export function autocorrelation(values: ArrayLike<number>, maxLag: number): Float64Array {
  const n = values.length;
  const out = new Float64Array(Math.max(0, Math.min(maxLag, n - 1)) + 1);
  if (n < 2) return out;
  // Linear detrend.
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const y = values[i]!;
    sx += i;
    sy += y;
    sxx += i * i;
    sxy += i * y;
  }
  const den = n * sxx - sx * sx;
  const slope = den !== 0 ? (n * sxy - sx * sy) / den : 0;
  const icpt = (sy - slope * sx) / n;
  const size = nextPow2(2 * n);
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  for (let i = 0; i < n; i++) re[i] = values[i]! - (icpt + slope * i);
  fft(re, im);
  for (let i = 0; i < size; i++) {
    re[i] = re[i]! * re[i]! + im[i]! * im[i]!;
    im[i] = 0;
  }
  fft(re, im); // the power spectrum is real and even: a forward FFT gives size × the inverse
  const r0 = re[0]!;
  if (!(r0 > 0)) return out;
  for (let k = 0; k < out.length; k++) out[k] = ((re[k]! / r0) * n) / (n - k);
  return out;
}

/**
 * Finds periodicities of any length: local maxima of the autocorrelation that pass a significance
 * test against white noise, strongest first, with multiples of a stronger period dropped. Returns
 * an empty list for noise, trends, and too-short data.
 */
export function detectPeriods(
  values: ArrayLike<number>,
  options: PeriodDetectionOptions = {},
): PeriodCandidate[] {
  const n = values.length;
  const minP = Math.max(2, Math.floor(options.minPeriod ?? 2));
  const maxP = Math.min(Math.floor(options.maxPeriod ?? n / 2), Math.floor(n / 2));
  const minStrength = options.minStrength ?? 0.2;
  const z = options.zThreshold ?? 3;
  const q = Math.max(0, Math.floor(options.nullLags ?? 10));
  const maxC = options.maxCandidates ?? 3;
  if (n < 8 || maxP < minP) return [];
  for (let i = 0; i < n; i++) if (!Number.isFinite(values[i]!)) return [];
  const r = autocorrelation(values, maxP + 1);
  let bartlett = 1;
  for (let j = 1; j <= Math.min(q, r.length - 1); j++) bartlett += 2 * r[j]! * r[j]!;
  const found: PeriodCandidate[] = [];
  let runningMin = Infinity;
  for (let k = 1; k <= maxP; k++) {
    const v = r[k]!;
    if (k < minP) {
      runningMin = Math.min(runningMin, v);
      continue;
    }
    const prev = r[k - 1]!;
    const next = k + 1 < r.length ? r[k + 1]! : -Infinity;
    if (
      v > prev &&
      v >= next &&
      v > minStrength &&
      v > z * Math.sqrt(bartlett / (n - k)) &&
      v - runningMin > 0.1
    ) {
      found.push({ period: k, strength: Math.min(1, v) });
    }
    runningMin = Math.min(runningMin, v);
  }
  // Shortest first: a multiple of an accepted period is a harmonic of it, not a new period,
  // unless it is clearly stronger (a weekly pattern on top of a daily one).
  const kept: PeriodCandidate[] = [];
  for (const c of found) {
    const multipleOf = kept.find((k) => {
      const ratio = c.period / k.period;
      const cycles = Math.round(ratio);
      return ratio > 1.5 && Math.abs(c.period - cycles * k.period) <= Math.max(1, 0.5 * cycles);
    });
    if (multipleOf === undefined || c.strength > multipleOf.strength + 0.1) kept.push(c);
  }
  kept.sort((a, b) => b.strength - a.strength || a.period - b.period);
  return kept.slice(0, maxC);
}
