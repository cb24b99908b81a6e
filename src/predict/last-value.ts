import type { PointModel } from './forecaster.js';

/** Naive model: every horizon forecasts the newest value. */
export class LastValueModel implements PointModel {
  readonly name = 'last-value';
  #last = Number.NaN;

  observe(x: number): void {
    this.#last = x;
  }

  predict(): number {
    return this.#last;
  }
}
