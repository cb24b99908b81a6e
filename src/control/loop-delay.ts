import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const RESOLUTION_MS = 10;

/** Event-loop delay of this process (ms): keep the data plane's loop free. */
export class LoopDelay {
  readonly #h: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  start(): void {
    this.#h.enable();
  }

  stop(): void {
    this.#h.disable();
  }

  stats(): { p50Ms: number; p99Ms: number; maxMs: number } {
    // The histogram records the sampling timer's whole period; the delay is what exceeds it.
    const ms = (ns: number): number => Math.max(0, ns / 1e6 - RESOLUTION_MS);
    return { p50Ms: ms(this.#h.percentile(50)), p99Ms: ms(this.#h.percentile(99)), maxMs: ms(this.#h.max) };
  }
}
