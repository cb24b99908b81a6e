import type { HistoryView, PointModel } from './forecaster.js';

/**
 * Seasonal naive: the value one period before the target. With `cycles` > 1, the mean of the
 * same phase over the last `cycles` periods (a "seasonal mean", less noisy). NaN until one full
 * period is held.
 */
export class SeasonalNaiveModel implements PointModel {
  readonly name: string;
  readonly period: number;
  readonly #cycles: number;

  constructor(period: number, cycles = 1) {
    this.period = Math.max(1, Math.floor(period));
    this.#cycles = Math.max(1, Math.floor(cycles));
    this.name = cycles > 1 ? `seasonal-mean-${this.period}x${this.#cycles}` : `seasonal-naive-${this.period}`;
  }

  observe(): void {}

  predict(h: number, history: HistoryView): number {
    const m = this.period;
    const k = Math.ceil(h / m);
    let sum = 0;
    let n = 0;
    for (let c = 0; c < this.#cycles; c++) {
      const back = m * (k + c) - h;
      if (back >= history.size) break;
      sum += history.back(back);
      n++;
    }
    return n > 0 ? sum / n : Number.NaN;
  }
}
