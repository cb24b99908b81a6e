import { probe, type ProbeResult, type ProbeTarget } from './probes.js';

/** Options of one monitored instance. */
export interface ActiveHealthOptions {
  target: ProbeTarget;
  /** Time between checks, ms. */
  intervalMs: number;
  /** A check slower than this fails, ms. */
  timeoutMs: number;
  /** Consecutive failures before the verdict turns unhealthy. */
  failureThreshold: number;
  /** Failures during this time after start do not count, ms. */
  startPeriodMs: number;
}

/** Health verdict after each check. */
export interface HealthVerdict {
  healthy: boolean;
  consecutiveFailures: number;
  last: ProbeResult;
  checkedAt: number;
  /** True on the check that changed the verdict. */
  changed: boolean;
}

/**
 * Runs an active health check on an interval until its signal aborts, reporting a verdict after
 * each check. Healthy after one success; unhealthy after `failureThreshold` consecutive failures
 * once the start period is over.
 */
export class ActiveHealthMonitor {
  #healthy: boolean | undefined;
  #failures = 0;
  readonly #started = Date.now();

  private constructor(
    private readonly options: ActiveHealthOptions,
    private readonly onVerdict: (verdict: HealthVerdict) => void,
  ) {}

  /** Starts checking; stops when `signal` aborts. */
  static start(
    options: ActiveHealthOptions,
    onVerdict: (verdict: HealthVerdict) => void,
    signal: AbortSignal,
  ): ActiveHealthMonitor {
    const monitor = new ActiveHealthMonitor(options, onVerdict);
    void monitor.#loop(signal);
    return monitor;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const result = await probe(this.options.target, this.options.timeoutMs);
      if (signal.aborted) return;
      this.#record(result);
      await sleep(this.options.intervalMs, signal);
    }
  }

  #record(result: ProbeResult): void {
    const now = Date.now();
    const before = this.#healthy;
    if (result.ok) {
      this.#failures = 0;
      this.#healthy = true;
    } else {
      this.#failures++;
      const inStartPeriod = now - this.#started < this.options.startPeriodMs && this.#healthy !== true;
      if (!inStartPeriod && this.#failures >= this.options.failureThreshold) this.#healthy = false;
    }
    if (this.#healthy === undefined) return;
    this.onVerdict({
      healthy: this.#healthy,
      consecutiveFailures: this.#failures,
      last: result,
      checkedAt: now,
      changed: before !== this.#healthy,
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
