import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { LatencyHistogram, type LatencySnapshot } from './latency-histogram.js';
import { checkTarget, SLOW_START_MIN_FRACTION, type BackendTarget } from './router-options.js';

/** Connections to one backend, owned by the proxy that uses them (an undici Pool, a set of sockets). */
export interface BackendResource {
  /** Graceful: resolves once in-flight work has finished; accepts no new work. */
  close(): Promise<void>;
  /** Abrupt: cuts every connection now (in-flight requests fail). */
  destroy(): void;
}

/** Per-backend counters, as returned by {@link Router.stats}. */
export interface BackendStats {
  id: string;
  host: string;
  port: number;
  epoch: number;
  /** `serving`, `draining` (left the set, finishing in-flight work) or `ejected` (refused a connection lately). */
  state: 'serving' | 'draining' | 'ejected';
  inFlight: number;
  requests: number;
  errors: number;
  /** The weight it is given now (its configured weight, or less while it slow-starts). */
  weight: number;
  /** Whether it is still ramping up (slow start). */
  rampingUp: boolean;
  /**
   * Bytes exchanged with it since it joined: `out` to it (request heads and bodies), `in` from it
   * (response heads and bodies) — its network I/O as the router sees it (HTTP routing: forwarded
   * requests, not the router's own health checks or mirrored copies).
   */
  bytes: { in: number; out: number };
  latency: LatencySnapshot;
}

/** Router-side state of one backend. */
export class BackendState<R extends BackendResource = BackendResource> {
  inFlight = 0;
  requests = 0;
  errors = 0;
  /** Bytes received from it and sent to it ({@link BackendStats.bytes}). */
  bytesIn = 0;
  bytesOut = 0;
  ejectedUntil = 0;
  draining = false;
  readonly latency = new LatencyHistogram();
  readonly key: string;
  /** Configured weight ({@link BackendTarget.weight}). */
  weight = 1;
  /** Remaining slow start: the ramp runs from `addedAt` for `slowStartMs` (0 = at full weight). */
  slowStartMs = 0;
  addedAt = 0;
  /** Smooth weighted round-robin accumulator (weighted selection only). */
  current = 0;

  constructor(
    readonly id: string,
    readonly host: string,
    readonly port: number,
    public epoch: number,
    readonly resource: R,
  ) {
    this.key = `${id}\u0000${host}\u0000${port}`;
  }

  /** The weight now: `weight`, scaled by the slow-start ramp while it runs. */
  effectiveWeight(now: number): number {
    if (this.weight === 0 || this.slowStartMs <= 0) return this.weight;
    const f = (now - this.addedAt) / this.slowStartMs;
    if (f >= 1) {
      this.slowStartMs = 0;
      return this.weight;
    }
    return this.weight * Math.max(SLOW_START_MIN_FRACTION, f);
  }

  stats(now: number): BackendStats {
    const state = this.draining ? 'draining' : this.ejectedUntil > now ? 'ejected' : 'serving';
    return {
      id: this.id,
      host: this.host,
      port: this.port,
      epoch: this.epoch,
      state,
      inFlight: this.inFlight,
      requests: this.requests,
      errors: this.errors,
      weight: Number(this.effectiveWeight(now).toFixed(3)),
      rampingUp: this.slowStartMs > 0,
      bytes: { in: this.bytesIn, out: this.bytesOut },
      latency: this.latency.snapshot(),
    };
  }
}

/** Loads (outstanding requests per weight) closer than this count as equal. */
const LOAD_EPSILON = 1e-9;

interface Waiter<R extends BackendResource> {
  readonly cb: (b: BackendState<R> | undefined) => void;
  readonly timer: NodeJS.Timeout;
  done: boolean;
}

/** Fencing counters. */
export interface FencingStats {
  epoch: number;
  /** Backends refused by setBackends or removed by setEpoch because their epoch was older. */
  refusedBackends: number;
  /** In-flight requests/connections cut because their backend was fenced. */
  cutInFlight: number;
}

/** Options of a {@link BackendSet}. */
export interface BackendSetOptions {
  ejectMs: number;
  drainTimeoutMs: number;
  maxWaiting: number;
  /** Monotonic clock, ms (tests inject one to step through a slow start). @default performance.now */
  now?: () => number;
}

/**
 * The serving set of one service: least-outstanding selection within weights, slow start of joining
 * backends, atomic swaps, draining of backends that left, epoch fencing, short ejection of backends
 * that refuse connections, and bounded waiting for a backend to appear.
 */
export class BackendSet<R extends BackendResource> {
  #active: Array<BackendState<R>> = [];
  readonly #draining = new Set<BackendState<R>>();
  #waiters: Array<Waiter<R>> = [];
  #epoch: number;
  #rr = 0;
  #ejectTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Some serving backend has a weight other than 1 or is slow-starting: weighted selection. */
  #weighted = false;
  /** Scratch list of the least-loaded candidates of one weighted selection (no allocation per request). */
  readonly #tied: Array<BackendState<R>> = [];
  readonly #now: () => number;
  refusedBackends = 0;
  cutInFlight = 0;

  constructor(
    private readonly createResource: (t: { id: string; host: string; port: number }) => R,
    private readonly opts: BackendSetOptions,
    epoch: number,
  ) {
    this.#epoch = epoch;
    this.#now = opts.now ?? (() => performance.now());
  }

  get epoch(): number {
    return this.#epoch;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Backend ids currently serving (in selection order). */
  ids(): string[] {
    return this.#active.map((b) => b.id);
  }

  /**
   * Atomically replaces the serving set. Backends that stay keep their connections; backends that left
   * drain (in-flight work completes, then their connections close); backends whose epoch is older than
   * the current epoch are refused and counted; when every backend given is refused, the set is left
   * unchanged. A backend that joins with `slowStartMs` ramps up from then; one that stays keeps its
   * ramp and takes its new weight. Returns the refused ids.
   */
  set(targets: readonly BackendTarget[]): string[] {
    if (this.#closed) return [];
    const refused: string[] = [];
    const old = new Map(this.#active.map((b) => [b.key, b]));
    const next: Array<BackendState<R>> = [];
    const seen = new Set<string>();
    targets.forEach((t, i) => checkTarget(t, `backends[${i}]`));
    for (const t of targets) {
      const epoch = t.epoch ?? 0;
      if (epoch < this.#epoch) {
        refused.push(t.id);
        this.refusedBackends++;
        continue;
      }
      const key = `${t.id}\u0000${t.host}\u0000${t.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const kept = old.get(key);
      if (kept) {
        kept.epoch = epoch;
        kept.weight = t.weight ?? 1;
        old.delete(key);
        next.push(kept);
      } else {
        const b = new BackendState(t.id, t.host, t.port, epoch, this.createResource(t));
        b.weight = t.weight ?? 1;
        b.slowStartMs = t.slowStartMs ?? 0;
        b.addedAt = this.#now();
        next.push(b);
      }
    }
    // A command made only of stale backends (a deposed control plane's) changes nothing.
    if (next.length === 0 && targets.length > 0 && refused.length === targets.length) return refused;
    this.#active = next;
    this.#weighted = next.some((b) => b.weight !== 1 || b.slowStartMs > 0);
    for (const b of next) b.current = 0;
    for (const b of old.values()) this.#drain(b);
    this.#wake();
    return refused;
  }

  /**
   * Raises the fencing epoch. Serving or draining backends with an older epoch are removed and their
   * connections destroyed at once (their in-flight requests fail and are retried or answered 503).
   * Thrown (`UNDERSTUDY_ERR_ROUTER_CONFIG`) when the epoch would go backwards.
   */
  setEpoch(epoch: number): void {
    if (!Number.isFinite(epoch) || epoch < this.#epoch) {
      throw new UnderstudyError(
        ErrorCode.RouterConfig,
        `router epoch must not go backwards (${this.#epoch} → ${String(epoch)})`,
        { details: { field: 'epoch' } },
      );
    }
    this.#epoch = epoch;
    const keep: Array<BackendState<R>> = [];
    for (const b of this.#active) {
      if (b.epoch < epoch) this.#fence(b);
      else keep.push(b);
    }
    this.#active = keep;
    for (const b of [...this.#draining]) if (b.epoch < epoch) this.#fence(b);
    this.#wake();
  }

  #fence(b: BackendState<R>): void {
    this.refusedBackends++;
    this.cutInFlight += b.inFlight;
    this.#draining.delete(b);
    b.draining = true;
    b.resource.destroy();
  }

  #drain(b: BackendState<R>): void {
    b.draining = true;
    this.#draining.add(b);
    const timer = setTimeout(() => b.resource.destroy(), this.opts.drainTimeoutMs);
    timer.unref();
    b.resource.close().then(
      () => {
        clearTimeout(timer);
        this.#draining.delete(b);
      },
      () => {
        clearTimeout(timer);
        this.#draining.delete(b);
      },
    );
  }

  /**
   * Least outstanding requests among usable backends (round-robin among ties); `avoid` is used only
   * when nothing else is. With weights (or a slow start running), least outstanding requests per unit
   * of weight (`inFlight / weight`, HAProxy's weighted leastconn), smooth weighted round-robin among
   * the backends that tie: shares follow the weights at low load (every backend idle), a ramping
   * backend holds about its weight's fraction of the others' outstanding requests, and a backend
   * is never chosen while another has fewer outstanding requests per weight — a cold instance blocked
   * on a slow request gets no more until it answers. Weight 0: no new requests.
   */
  select(avoid?: BackendState<R>): BackendState<R> | undefined {
    const list = this.#active;
    const n = list.length;
    if (n === 0) return undefined;
    const now = this.#now();
    if (this.#weighted) return this.#selectWeighted(now, avoid);
    if (n === 1) {
      const only = list[0] as BackendState<R>;
      return only.ejectedUntil !== 0 && only.ejectedUntil > now ? undefined : only;
    }
    const start = this.#rr++ % n;
    let best: BackendState<R> | undefined;
    let fallback: BackendState<R> | undefined;
    for (let k = 0; k < n; k++) {
      const b = list[(start + k) % n] as BackendState<R>;
      if (b.ejectedUntil > now) continue;
      if (b === avoid) {
        fallback = b;
        continue;
      }
      if (best === undefined || b.inFlight < best.inFlight) best = b;
    }
    return best ?? fallback;
  }

  #selectWeighted(now: number, avoid?: BackendState<R>): BackendState<R> | undefined {
    let fallback: BackendState<R> | undefined;
    let ramping = false;
    let least = Infinity;
    const tied = this.#tied;
    tied.length = 0;
    for (const b of this.#active) {
      if (b.ejectedUntil > now) continue;
      const w = b.effectiveWeight(now);
      if (b.slowStartMs > 0) ramping = true;
      if (w <= 0) continue;
      if (b === avoid) {
        fallback = b;
        continue;
      }
      const load = b.inFlight / w;
      if (load < least - LOAD_EPSILON) {
        least = load;
        tied.length = 0;
      } else if (load > least + LOAD_EPSILON) continue;
      tied.push(b);
    }
    // Smooth weighted round-robin among the least loaded: each gains its weight, the chosen one pays
    // the total. A backend that was not a candidate neither gains nor pays (no debt builds up while
    // it is busy, so it is not owed a burst of requests when it frees up).
    let best: BackendState<R> | undefined;
    let total = 0;
    for (const b of tied) {
      const w = b.effectiveWeight(now);
      b.current += w;
      total += w;
      if (best === undefined || b.current > best.current) best = b;
    }
    if (best) best.current -= total;
    tied.length = 0;
    // Every ramp over and every weight 1: back to plain least-outstanding.
    if (!ramping && this.#active.every((b) => b.weight === 1)) this.#weighted = false;
    return best ?? fallback;
  }

  /** Marks a backend that refused a connection: skipped for `ejectMs` unless the set changes it. */
  eject(b: BackendState<R>): void {
    if (this.opts.ejectMs <= 0) return;
    const until = this.#now() + this.opts.ejectMs;
    b.ejectedUntil = until;
    if (this.#ejectTimer === undefined) {
      this.#ejectTimer = setTimeout(() => {
        this.#ejectTimer = undefined;
        this.#wake();
      }, this.opts.ejectMs + 1);
      this.#ejectTimer.unref();
    }
  }

  /**
   * Calls `cb` with a usable backend as soon as one exists, or with `undefined` after `waitMs` (or at
   * once when too many are already waiting or the set is closed).
   */
  waitFor(waitMs: number, cb: (b: BackendState<R> | undefined) => void, avoid?: BackendState<R>): void {
    const now = this.select(avoid);
    if (now !== undefined || this.#closed || waitMs <= 0 || this.#waiters.length >= this.opts.maxWaiting) {
      cb(now);
      return;
    }
    const w: Waiter<R> = {
      cb,
      done: false,
      timer: setTimeout(() => {
        if (w.done) return;
        w.done = true;
        this.#waiters = this.#waiters.filter((x) => x !== w);
        cb(undefined);
      }, waitMs),
    };
    this.#waiters.push(w);
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (w.done) continue;
      const b = this.#closed ? undefined : this.select();
      if (b === undefined && !this.#closed) {
        this.#waiters.push(w);
        continue;
      }
      w.done = true;
      clearTimeout(w.timer);
      w.cb(b);
    }
    // Ejections that are still running will wake the rest later.
    if (
      this.#waiters.length > 0 &&
      this.#ejectTimer === undefined &&
      this.#active.some((b) => b.ejectedUntil > this.#now())
    ) {
      const until = Math.max(...this.#active.map((b) => b.ejectedUntil)) - this.#now();
      this.#ejectTimer = setTimeout(() => {
        this.#ejectTimer = undefined;
        this.#wake();
      }, until + 1);
      this.#ejectTimer.unref();
    }
  }

  fencing(): FencingStats {
    return { epoch: this.#epoch, refusedBackends: this.refusedBackends, cutInFlight: this.cutInFlight };
  }

  stats(): BackendStats[] {
    const now = this.#now();
    return [...this.#active, ...this.#draining].map((b) => b.stats(now));
  }

  /** Stops accepting work: waiters get `undefined`; connections close gracefully, or are destroyed when `force`. */
  async close(force: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ejectTimer) clearTimeout(this.#ejectTimer);
    this.#wake();
    const all = [...this.#active, ...this.#draining];
    this.#active = [];
    this.#draining.clear();
    if (force) {
      for (const b of all) b.resource.destroy();
      return;
    }
    await Promise.all(all.map((b) => b.resource.close().catch(() => undefined)));
  }
}
