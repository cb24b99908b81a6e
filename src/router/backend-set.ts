import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { LatencyHistogram, type LatencySnapshot } from './latency-histogram.js';
import { checkTarget, type BackendTarget } from './router-options.js';

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
  latency: LatencySnapshot;
}

/** Router-side state of one backend. */
export class BackendState<R extends BackendResource = BackendResource> {
  inFlight = 0;
  requests = 0;
  errors = 0;
  ejectedUntil = 0;
  draining = false;
  readonly latency = new LatencyHistogram();
  readonly key: string;

  constructor(
    readonly id: string,
    readonly host: string,
    readonly port: number,
    public epoch: number,
    readonly resource: R,
  ) {
    this.key = `${id}\u0000${host}\u0000${port}`;
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
      latency: this.latency.snapshot(),
    };
  }
}

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

/**
 * The serving set of one service: least-outstanding selection, atomic swaps, draining of backends that
 * left, epoch fencing, short ejection of backends that refuse connections, and bounded waiting for a
 * backend to appear.
 */
export class BackendSet<R extends BackendResource> {
  #active: Array<BackendState<R>> = [];
  readonly #draining = new Set<BackendState<R>>();
  #waiters: Array<Waiter<R>> = [];
  #epoch: number;
  #rr = 0;
  #ejectTimer: NodeJS.Timeout | undefined;
  #closed = false;
  refusedBackends = 0;
  cutInFlight = 0;

  constructor(
    private readonly createResource: (t: { host: string; port: number }) => R,
    private readonly opts: { ejectMs: number; drainTimeoutMs: number; maxWaiting: number },
    epoch: number,
  ) {
    this.#epoch = epoch;
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
   * unchanged. Returns the refused ids.
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
        old.delete(key);
        next.push(kept);
      } else {
        next.push(new BackendState(t.id, t.host, t.port, epoch, this.createResource(t)));
      }
    }
    // A command made only of stale backends (a deposed control plane's) changes nothing.
    if (next.length === 0 && targets.length > 0 && refused.length === targets.length) return refused;
    this.#active = next;
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

  /** Least outstanding requests among usable backends (round-robin among ties); `avoid` is used only when nothing else is. */
  select(avoid?: BackendState<R>): BackendState<R> | undefined {
    const list = this.#active;
    const n = list.length;
    if (n === 0) return undefined;
    if (n === 1) {
      const only = list[0] as BackendState<R>;
      return only.ejectedUntil !== 0 && only.ejectedUntil > performance.now() ? undefined : only;
    }
    const now = performance.now();
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

  /** Marks a backend that refused a connection: skipped for `ejectMs` unless the set changes it. */
  eject(b: BackendState<R>): void {
    if (this.opts.ejectMs <= 0) return;
    const until = performance.now() + this.opts.ejectMs;
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
      this.#active.some((b) => b.ejectedUntil > performance.now())
    ) {
      const until = Math.max(...this.#active.map((b) => b.ejectedUntil)) - performance.now();
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
    const now = performance.now();
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
