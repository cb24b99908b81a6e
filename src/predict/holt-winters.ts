import type { HistoryView, PointModel } from './forecaster.js';
import { nelderMead } from './nelder-mead.js';

/** Options of {@link HoltWintersModel}. */
export interface HoltWintersOptions {
  /** Season length in steps; 0 or 1 for no season (Holt's linear trend). @default 0 */
  period?: number;
  /** Fit a damping factor φ ∈ [0.8, 0.98] for the trend; false fixes φ = 1. @default true */
  damped?: boolean;
  /** Values used for each fit (the most recent). @default max(3 × period, 400) */
  fitWindow?: number;
  /**
   * Refit after this many new values (each fit starts from the previous parameters); later refits
   * back off to 2× and then 4× this interval. @default max(2 × period, 960)
   */
  refitEvery?: number;
  /** Objective evaluations of the first fit (a refit, warm-started, uses half). @default 80 */
  maxEvaluations?: number;
}

/** Fitted smoothing parameters. */
export interface HoltWintersParams {
  alpha: number;
  beta: number;
  gamma: number;
  phi: number;
}

const sig = (u: number): number => 1 / (1 + Math.exp(-u));

/**
 * Additive Holt–Winters with an optionally damped trend. α, β, γ and φ are fitted automatically
 * by minimising the one-step squared error over a recent window (Nelder–Mead), and refitted
 * periodically; between fits the state is updated in O(1) per value.
 */
export class HoltWintersModel implements PointModel {
  readonly name: string;
  readonly period: number;
  readonly #damped: boolean;
  readonly #fitWindow: number;
  readonly #refitEvery: number;
  readonly #maxEval: number;
  readonly #season: Float32Array;
  #level = 0;
  #trend = 0;
  #idx = 0;
  #params: HoltWintersParams | undefined;
  #u: number[] = [-0.85, -1.5, -1.5, 1];
  #sinceFit = 0;
  #fits = 0;
  // The fitted parameters as plain fields (the per-value update reads no other object).
  #pa = 0;
  #pb = 0;
  #pg = 0;
  #phi = 1;

  constructor(options: HoltWintersOptions = {}) {
    const p = Math.floor(options.period ?? 0);
    this.period = p > 1 ? p : 0;
    this.#damped = options.damped ?? true;
    this.#fitWindow = Math.floor(options.fitWindow ?? Math.max(3 * this.period, 400));
    this.#refitEvery = Math.floor(options.refitEvery ?? Math.max(2 * this.period, 960));
    this.#maxEval = options.maxEvaluations ?? 80;
    this.#season = new Float32Array(Math.max(1, this.period));
    this.name = this.period > 0 ? `holt-winters-${this.period}` : 'holt-damped';
  }

  /** Parameters of the last fit, if any. */
  get params(): HoltWintersParams | undefined {
    return this.#params;
  }

  /** Values needed before the first fit. */
  get minHistory(): number {
    return this.period > 0 ? 2 * this.period + 2 : 6;
  }

  observe(x: number, history: HistoryView): void {
    this.#sinceFit++;
    if (history.size < this.minHistory) return;
    // Refits back off as the parameters settle: every refitEvery, then 2×, then 4× that.
    if (this.#params === undefined || this.#sinceFit >= this.#refitEvery * Math.min(4, this.#fits)) {
      this.#fit(history);
      return;
    }
    this.#step(x, this.#pa, this.#pb, this.#pg, this.#phi);
  }

  predict(h: number): number {
    if (this.#params === undefined) return Number.NaN;
    // Σ_{i=1..h} φ^i.
    const phi = this.#phi;
    const damp = phi === 1 ? h : h === 1 ? phi : (phi * (1 - Math.pow(phi, h))) / (1 - phi);
    const s = this.period > 0 ? this.#season[(this.#idx + h - 1) % this.period]! : 0;
    return this.#level + damp * this.#trend + s;
  }

  #toParams(u: readonly number[]): HoltWintersParams {
    const alpha = 0.001 + 0.998 * sig(u[0]!);
    return {
      alpha,
      beta: sig(u[1]!) * alpha,
      gamma: this.period > 0 ? sig(u[2]!) * (1 - alpha) : 0,
      phi: this.#damped ? 0.8 + 0.18 * sig(u[3]!) : 1,
    };
  }

  #step(x: number, alpha: number, beta: number, gamma: number, phi: number): number {
    const m = this.period;
    const sOld = m > 0 ? this.#season[this.#idx]! : 0;
    const pred = this.#level + phi * this.#trend + sOld;
    const level = alpha * (x - sOld) + (1 - alpha) * (this.#level + phi * this.#trend);
    this.#trend = beta * (level - this.#level) + (1 - beta) * phi * this.#trend;
    this.#level = level;
    if (m > 0) {
      this.#season[this.#idx] = gamma * (x - level) + (1 - gamma) * sOld;
      this.#idx = this.#idx + 1 === m ? 0 : this.#idx + 1;
    }
    return x - pred;
  }

  /** Initialises the state from the head of `data` and runs the filter; returns the SSE. */
  #run(data: Float64Array, p: HoltWintersParams): number {
    const m = this.period;
    let start: number;
    if (m > 0) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < m; i++) {
        a += data[i]!;
        b += data[m + i]!;
      }
      a /= m;
      b /= m;
      this.#level = a;
      this.#trend = (b - a) / m;
      for (let i = 0; i < m; i++) this.#season[i] = data[i]! - a;
      this.#idx = 0;
      // Replay the first season through the recursions from a neutral state for stability.
      start = m;
      this.#level = a;
    } else {
      this.#level = data[0]!;
      this.#trend = data[1]! - data[0]!;
      start = 1;
    }
    let sse = 0;
    const scale = Math.abs(this.#level) + 1e-12;
    for (let i = start; i < data.length; i++) {
      const e = this.#step(data[i]!, p.alpha, p.beta, p.gamma, p.phi) / scale;
      sse += e * e;
    }
    return sse;
  }

  #fit(history: HistoryView): void {
    this.#sinceFit = 0;
    this.#fits++;
    const n = Math.min(history.size, this.#fitWindow);
    const data = history.toArray(n);
    const dims = this.period > 0 ? (this.#damped ? 4 : 3) : this.#damped ? 3 : 2;
    const obj = (u: readonly number[]): number => {
      const full = [u[0]!, u[1]!, this.period > 0 ? u[2]! : 0, this.#damped ? u[dims - 1]! : 0];
      return this.#run(data, this.#toParams(full));
    };
    const u0 = [this.#u[0]!, this.#u[1]!];
    if (this.period > 0) u0.push(this.#u[2]!);
    if (this.#damped) u0.push(this.#u[3]!);
    // A refit starts from the previous optimum: a smaller simplex and half the evaluations.
    const warm = this.#params !== undefined;
    const res = nelderMead(obj, u0, {
      step: warm ? 0.5 : 1,
      maxEvaluations: warm ? Math.ceil(this.#maxEval / 2) : this.#maxEval,
      tolerance: 1e-5,
    });
    const full = [
      res.x[0]!,
      res.x[1]!,
      this.period > 0 ? res.x[2]! : this.#u[2]!,
      this.#damped ? res.x[dims - 1]! : this.#u[3]!,
    ];
    this.#u = full;
    this.#params = this.#toParams(full);
    this.#pa = this.#params.alpha;
    this.#pb = this.#params.beta;
    this.#pg = this.#params.gamma;
    this.#phi = this.#params.phi;
    this.#run(data, this.#params);
  }
}
