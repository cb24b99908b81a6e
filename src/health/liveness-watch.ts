import { readFileSync } from 'node:fs';
import { PhiAccrualDetector } from './phi-accrual.js';
import { probe, type ProbeTarget } from './probes.js';

/** Options of {@link LivenessWatch}. */
export interface LivenessWatchOptions {
  pid: number;
  /**
   * What answers while the instance is alive: an HTTP GET of its health path is the strong heartbeat (a
   * stopped or deadlocked process still completes TCP handshakes from its listen backlog, but does not
   * answer); a TCP connect is the weak one. Without a target only the process state is watched.
   */
  target?: ProbeTarget;
  /** Heartbeat interval, ms. */
  intervalMs: number;
  /** Suspicion above which a live but silent process is declared hung. */
  phiThreshold: number;
  /** Silence tolerated on top of the mean interval before suspicion grows, ms. @default 0 */
  acceptablePauseMs?: number;
}

/** Why an instance is believed failed, with the evidence. */
export interface FailureVerdict {
  /** `hang`: alive but silent (stopped, or not answering while the process exists). */
  kind: 'hang';
  at: number;
  /** One line of evidence. */
  detail: string;
  evidence: {
    phi: number;
    lastHeartbeatAgoMs: number | undefined;
    procState: string;
    failedProbes: number;
    lastProbeError?: string;
  };
}

/** Reads a process's state letter from /proc (R, S, D, T, t, Z, …), or `gone`. */
export function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] ?? '?';
  } catch {
    return 'gone';
  }
}

/**
 * Heartbeats one instance: a TCP connect to its port every interval feeds a phi-accrual detector, and
 * the process state in /proc is read each interval. A stopped process (SIGSTOP, state T) is declared
 * hung after two consecutive readings; a silent one when phi passes the threshold while a probe has
 * failed or is overdue — once it has answered at least once (before that it may still be starting, which
 * the health check's start period covers). Ticks that fire late because this process's own event loop stalled do not
 * count as evidence (the silence would be ours, not the instance's).
 */
export class LivenessWatch {
  readonly detector: PhiAccrualDetector;
  #failedProbes = 0;
  #probeInFlightSince: number | undefined;
  #lastProbeError: string | undefined;
  #stoppedReadings = 0;
  #verdictGiven = false;
  /** Silence counts only once the instance has answered at least once (it may still be starting). */
  #armed = false;

  private constructor(
    private readonly options: LivenessWatchOptions,
    private readonly onVerdict: (v: FailureVerdict) => void,
  ) {
    this.detector = new PhiAccrualDetector({
      firstHeartbeatEstimateMs: options.intervalMs,
      minStdDevMs: Math.max(10, options.intervalMs / 5),
      acceptablePauseMs: options.acceptablePauseMs ?? 0,
    });
  }

  /** Starts watching until `signal` aborts. */
  static start(
    options: LivenessWatchOptions,
    onVerdict: (v: FailureVerdict) => void,
    signal: AbortSignal,
  ): LivenessWatch {
    const watch = new LivenessWatch(options, onVerdict);
    let expected = Date.now() + options.intervalMs;
    const tick = (): void => {
      if (signal.aborted) return;
      const now = Date.now();
      const late = now - expected > options.intervalMs * 2;
      expected = now + options.intervalMs;
      watch.#tick(now, late);
      if (!watch.#verdictGiven) setTimeout(tick, options.intervalMs).unref();
    };
    setTimeout(tick, options.intervalMs).unref();
    return watch;
  }

  #tick(now: number, late: boolean): void {
    const state = processState(this.options.pid);
    if (state === 'gone' || state === 'Z') return; // an exit: the runtime reports it
    this.#stoppedReadings = state === 'T' || state === 't' ? this.#stoppedReadings + 1 : 0;
    if (this.options.target !== undefined && this.#probeInFlightSince === undefined) this.#probe(now);
    if (late) {
      // Our own loop stalled: whatever silence we saw is not evidence. Restart the clock.
      this.detector.heartbeat(now);
      return;
    }
    const phi = this.detector.phi(now);
    const overdue =
      this.#probeInFlightSince !== undefined && now - this.#probeInFlightSince > this.options.intervalMs * 2;
    const silent =
      this.#armed &&
      this.options.target !== undefined &&
      phi >= this.options.phiThreshold &&
      (this.#failedProbes > 0 || overdue);
    // A silent process in state T is a stopped one: say so, it is the more precise evidence.
    const stopped = this.#stoppedReadings >= 2 || (silent && this.#stoppedReadings >= 1);
    if (!stopped && !silent) return;
    this.#verdictGiven = true;
    const last = this.detector.lastHeartbeat;
    this.onVerdict({
      kind: 'hang',
      at: now,
      detail: stopped
        ? `process ${this.options.pid} is stopped (state ${state}), alive but not running`
        : `no heartbeat for ${last === undefined ? '?' : now - last} ms (phi ${phi.toFixed(1)} ≥ ${this.options.phiThreshold})`,
      evidence: {
        phi,
        lastHeartbeatAgoMs: last === undefined ? undefined : now - last,
        procState: state,
        failedProbes: this.#failedProbes,
        ...(this.#lastProbeError ? { lastProbeError: this.#lastProbeError } : {}),
      },
    });
  }

  #probe(now: number): void {
    const target = this.options.target;
    if (!target) return;
    this.#probeInFlightSince = now;
    void probe(target, this.options.intervalMs * 5).then((result) => {
      this.#probeInFlightSince = undefined;
      if (result.ok) {
        this.#failedProbes = 0;
        this.#armed = true;
        this.detector.heartbeat(Date.now());
      } else {
        this.#failedProbes++;
        this.#lastProbeError = result.detail;
      }
    });
  }
}
