import type { ServiceView } from './service-view.js';

/**
 * One second of a service, as the dashboard charts it. Absent fields were not measured at that time
 * (no autoscaler, no replication, no file sync, no shadow running).
 */
export interface HistorySample {
  /** When it was taken, ms since the epoch. */
  at: number;
  epoch: number;
  degraded: boolean;
  /** Serving instances (primaries running). */
  serving: number;
  /** Echoes standing by (the warm pool). */
  warmPool: number;
  /** Requests/s through the router (scaled services). */
  load?: number;
  /** Requests/s the serving set handles at its target utilisation (capacity × serving × target). */
  capacity?: number;
  /** The forecast the last scaling decision rested on, and its horizon. */
  forecast?: { mean: number; lower: number; upper: number; horizonMs: number };
  /** Shadow vs live: mean CPU utilisation of the serving set and the same predicted from the shadow. */
  shadow?: { live: number; shadow: number };
  /** Largest replication lag over the echoes: ms and mutations not yet applied. */
  replicationLagMs?: number;
  replicationLagMutations?: number;
  /** Largest file-sync lag over the echoes: seconds and bytes. */
  syncLagSeconds?: number;
  syncLagBytes?: number;
}

/** Options of {@link ServiceHistory}. */
export interface ServiceHistoryOptions {
  /** Samples kept per service (the oldest are dropped): at one a second, the last 15 minutes. @default 900 */
  capacity?: number;
}

const STANDING_BY = new Set(['running', 'starting', 'standby']);

/** The chart sample of one service view at `at`. */
export function historySample(view: ServiceView, at: number): HistorySample {
  const s = view.scaling;
  const repl = view.dataPlane?.replication?.echoes ?? [];
  const files = view.fileSync ?? [];
  const serving = view.instances.filter((i) => i.role === 'primary' && i.phase === 'running').length;
  return {
    at,
    epoch: view.epoch,
    degraded: view.degraded,
    serving,
    warmPool: view.instances.filter((i) => i.role === 'echo' && STANDING_BY.has(i.phase)).length,
    ...(s ? { load: s.load } : {}),
    ...(s?.capacity ? { capacity: s.capacity.perInstance * Math.max(serving, s.serving) * s.target } : {}),
    ...(s?.forecast
      ? {
          forecast: {
            mean: s.forecast.mean,
            lower: s.forecast.lower,
            upper: s.forecast.upper,
            horizonMs: s.forecast.horizonMs,
          },
        }
      : {}),
    ...(s?.shadow ? { shadow: { live: s.shadow.liveLoad, shadow: s.shadow.shadowLoad } } : {}),
    ...(repl.length
      ? {
          replicationLagMs: Math.max(...repl.map((e) => e.lagMs)),
          replicationLagMutations: Math.max(...repl.map((e) => e.pending)),
        }
      : {}),
    ...(files.length
      ? {
          syncLagSeconds: Math.max(...files.map((e) => e.lagSeconds)),
          syncLagBytes: Math.max(...files.map((e) => e.lagBytes)),
        }
      : {}),
  };
}

/**
 * The recent time series of every service: a bounded ring of {@link HistorySample}s per service, so a
 * dashboard opened late still charts the last minutes. Memory: `capacity` samples × services (a sample
 * is a few hundred bytes: 900 samples ≈ 0.3 MB per service).
 */
export class ServiceHistory {
  readonly #capacity: number;
  readonly #rings = new Map<string, HistorySample[]>();

  constructor(options: ServiceHistoryOptions = {}) {
    this.#capacity = Math.max(1, Math.floor(options.capacity ?? 900));
  }

  /** Appends one sample of every view (views of unknown services start a ring). */
  record(views: readonly ServiceView[], at: number): void {
    for (const v of views) {
      let ring = this.#rings.get(v.name);
      if (!ring) {
        ring = [];
        this.#rings.set(v.name, ring);
      }
      ring.push(historySample(v, at));
      if (ring.length > this.#capacity) ring.splice(0, ring.length - this.#capacity);
    }
  }

  /** The samples of `service` taken after `after` (ms), oldest first; undefined for a service never sampled. */
  samples(service: string, after = 0): HistorySample[] | undefined {
    const ring = this.#rings.get(service);
    if (!ring) return undefined;
    let i = ring.length;
    while (i > 0 && ring[i - 1]!.at > after) i--;
    return ring.slice(i);
  }
}
