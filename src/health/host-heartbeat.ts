import { connect } from 'node:net';
import { PhiAccrualDetector } from './phi-accrual.js';

/**
 * One heartbeat of a host: a TCP connect to its agent's API port. `answered` when the host's kernel
 * answered — the connection was accepted, or refused (an agent restarting: the host is up, its
 * instances run on) —; `silent` when nothing came back in time (the host is gone or cut off).
 */
export function hostHeartbeat(
  address: string,
  port: number,
  timeoutMs: number,
): Promise<'answered' | 'silent'> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let settled = false;
    const finish = (r: 'answered' | 'silent'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    // A timeout that falls due while this process's event loop stalled (a loaded machine) must not win
    // over an answer that came meanwhile: timers run before the I/O of the same loop turn, so the
    // verdict waits for that turn's I/O (setImmediate runs after it). An agent deciding to self-fence
    // on "no other host answers" must not take its own stall for a partition.
    const timer = setTimeout(() => setImmediate(() => finish('silent')), timeoutMs);
    socket.once('connect', () => finish('answered'));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish(err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' ? 'answered' : 'silent'),
    );
  });
}

/** Options of {@link HostHeartbeats}. */
export interface HostHeartbeatOptions {
  /** Interval between two heartbeats of a host, ms. @default 100 */
  intervalMs?: number;
  /** Suspicion (phi) at which a silent host is suspected. @default 8 */
  phiThreshold?: number;
  /** Silence tolerated on top of the mean interval before suspicion grows, ms. @default 400 */
  acceptablePauseMs?: number;
  /** One heartbeat of a target. @default {@link hostHeartbeat} (a TCP connect, timeout 5 intervals) */
  beat?: (target: HeartbeatTarget, timeoutMs: number) => Promise<'answered' | 'silent'>;
}

/** A host to heartbeat: where its agent listens. */
export interface HeartbeatTarget {
  host: string;
  address: string;
  port: number;
}

/** What {@link HostHeartbeats} reports. */
export interface HostSuspicion {
  host: string;
  at: number;
  phi: number;
  /** ms since the last answer. */
  silentMs: number;
  /**
   * ms since the first heartbeat that went unanswered was sent. Whatever cut the host off came before
   * that connect could be answered: no later than this long ago (give or take a round trip), even
   * when this process's own ticks ran late (the host's last answer + one interval would then be too
   * early). Undefined when no heartbeat was sent since the last answer.
   */
  unansweredMs?: number;
}

/**
 * Heartbeats of many hosts through one phi-accrual detector each (the detector of src/health): every
 * interval, a TCP connect to each host's agent port (one in flight per host); each answer is a
 * heartbeat. A host whose phi passes the threshold is reported once (`onSuspect`) until it answers
 * again (`onRecover`). Ticks that fire late because this process's own event loop stalled do not count
 * as evidence (the silence would be ours). Suspicion says "probably gone"; membership stays with the
 * store's leases.
 */
export class HostHeartbeats {
  readonly #targets = new Map<string, HeartbeatTarget>();
  readonly #detectors = new Map<string, PhiAccrualDetector>();
  readonly #inFlight = new Set<string>();
  readonly #suspected = new Set<string>();
  /** When the oldest heartbeat not answered yet was sent, by host (cleared by an answer). */
  readonly #unansweredSince = new Map<string, number>();
  readonly #interval: number;
  readonly #threshold: number;
  readonly #pause: number;
  readonly #beat: (target: HeartbeatTarget, timeoutMs: number) => Promise<'answered' | 'silent'>;
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;

  constructor(
    options: HostHeartbeatOptions,
    private readonly handlers: {
      onSuspect: (s: HostSuspicion) => void;
      onRecover: (host: string) => void;
    },
  ) {
    this.#interval = options.intervalMs ?? 100;
    this.#threshold = options.phiThreshold ?? 8;
    this.#pause = options.acceptablePauseMs ?? 400;
    this.#beat = options.beat ?? ((t, ms) => hostHeartbeat(t.address, t.port, ms));
  }

  /** Starts (or moves) the heartbeats of a host. */
  set(target: HeartbeatTarget): void {
    const before = this.#targets.get(target.host);
    this.#targets.set(target.host, target);
    if (before && before.address === target.address && before.port === target.port) return;
    this.#detectors.set(target.host, this.#detector());
    this.#unansweredSince.delete(target.host);
  }

  /** Stops following a host (its lease lapsed: the store's membership decided). */
  delete(host: string): void {
    this.#targets.delete(host);
    this.#detectors.delete(host);
    this.#suspected.delete(host);
    this.#unansweredSince.delete(host);
  }

  /** Whether `host` is suspected now. */
  suspected(host: string): boolean {
    return this.#suspected.has(host);
  }

  /** Begins ticking. */
  start(): void {
    if (this.#timer) return;
    this.#expected = Date.now() + this.#interval;
    this.#timer = setInterval(() => this.#tick(), this.#interval);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #detector(): PhiAccrualDetector {
    const d = new PhiAccrualDetector({
      firstHeartbeatEstimateMs: this.#interval,
      minStdDevMs: Math.max(10, this.#interval / 2),
      acceptablePauseMs: this.#pause,
    });
    d.heartbeat(Date.now());
    return d;
  }

  #tick(): void {
    const now = Date.now();
    const late = now - this.#expected > this.#interval * 2;
    this.#expected = now + this.#interval;
    for (const [host, target] of this.#targets) {
      const detector = this.#detectors.get(host);
      if (!detector) continue;
      if (late) {
        // Our own loop stalled: whatever silence we saw is not evidence. Restart the clock.
        detector.heartbeat(now);
      } else {
        const phi = detector.phi(now);
        if (phi >= this.#threshold && !this.#suspected.has(host)) {
          this.#suspected.add(host);
          const since = this.#unansweredSince.get(host);
          this.handlers.onSuspect({
            host,
            at: now,
            phi,
            silentMs: now - (detector.lastHeartbeat ?? now),
            ...(since !== undefined ? { unansweredMs: now - since } : {}),
          });
        }
      }
      if (this.#inFlight.has(host)) continue;
      this.#inFlight.add(host);
      // When the oldest heartbeat still unanswered went out: a host that never answered it was cut off
      // before it could (give or take a round trip).
      if (!this.#unansweredSince.has(host)) this.#unansweredSince.set(host, Date.now());
      void this.#beat(target, this.#interval * 5).then((r) => {
        this.#inFlight.delete(host);
        if (r !== 'answered' || this.#detectors.get(host) !== detector) return;
        this.#unansweredSince.delete(host);
        detector.heartbeat(Date.now());
        if (this.#suspected.delete(host)) this.handlers.onRecover(host);
      });
    }
  }
}
