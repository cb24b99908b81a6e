import { Pool, type Dispatcher } from 'undici';
import { checkTarget, type ShadowTarget } from './router-options.js';
import type { UpstreamDialer } from './upstream-tls.js';
import { shadowHost } from './proxy-headers.js';
import type { ReadSample, SampledRead } from './read-sample.js';

/** The result of a warm-up that had nothing to do (no warming mirror, no reads asked, or TCP mode). */
export function noWarmUp(): WarmUpResult {
  return { source: 'live', sampled: 0, sent: 0, completed: 0, failed: 0, dropped: 0, ms: 0, ended: 'done' };
}

/** Mirroring counters, as returned by {@link Router.stats}. */
export interface MirrorStats {
  shadows: string[];
  fraction: number;
  /** Copies sent (one per shadow per mirrored request). */
  sent: number;
  /** Copies not sent because `maxMirrorInFlight` were already in flight. */
  dropped: number;
  /** Requests not mirrored because their body was too large to hold. */
  skippedBody: number;
  /** Copies that failed (shadow down, reset, timeout); never visible to the client. */
  failed: number;
  /** Copies answered by the shadow (any status). */
  completed: number;
  inFlight: number;
}

interface Shadow {
  readonly target: ShadowTarget;
  readonly pool: Pool;
}

/** Response handler that discards everything and releases the in-flight slot once. */
class DiscardHandler implements Dispatcher.DispatchHandler {
  #done = false;
  constructor(
    private readonly mirror: Mirror,
    private readonly boost?: WarmUp,
  ) {}
  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    if (this.#done) return;
    this.#done = true;
    this.mirror.finished(true, this.boost);
  }
  onError(): void {
    if (this.#done) return;
    this.#done = true;
    this.mirror.finished(false, this.boost);
  }
}

/** Response handler of a replayed read: discards everything, reports once. */
class ReplayHandler implements Dispatcher.DispatchHandler {
  #done = false;
  constructor(private readonly done: (ok: boolean) => void) {}
  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    if (this.#done) return;
    this.#done = true;
    this.done(true);
  }
  onError(): void {
    if (this.#done) return;
    this.#done = true;
    this.done(false);
  }
}

/** What a {@link Mirror.warmUp} did. */
export interface WarmUpResult {
  /**
   * Where its reads came from: `replay` — the router's sample of recent live reads, sent again at full
   * speed; `live` — copies of live reads as they came (the sample was empty).
   */
  source: 'replay' | 'live';
  /** Distinct reads in the sample replayed (0 for `live`). */
  sampled: number;
  /** Reads sent to the target. */
  sent: number;
  /** Copies it answered (any status). */
  completed: number;
  /** Copies that failed (reset, timeout). */
  failed: number;
  /** Copies not sent because `maxMirrorInFlight` were already in flight (`live` only). */
  dropped: number;
  /** How long it took, ms. */
  ms: number;
  /** `done`: `reads` were answered or failed; `timeout`: not within the time allowed. */
  ended: 'done' | 'timeout';
}

/** A target being warmed up: by a replay of the sample, or by every live read until it has answered `reads`. */
interface WarmUp {
  readonly shadow: Shadow;
  readonly reads: number;
  readonly started: number;
  readonly source: WarmUpResult['source'];
  sent: number;
  completed: number;
  failed: number;
  dropped: number;
  settle(ended: WarmUpResult['ended']): void;
}

/** Header every cache-warming copy carries (`x-understudy-mirror: warm`), so the app can tell it apart. */
export const WARM_MIRROR_HEADER = 'x-understudy-mirror';

/**
 * Envoy-style request mirroring: copies of (a sampled fraction of) requests go to every shadow,
 * fire-and-forget, responses discarded, Host suffixed with `-shadow`. A bounded number of copies is in
 * flight; over the bound a copy is dropped and counted. Nothing here can delay or fail the client.
 *
 * With `warm` (cache warming of warm-pool echoes), only reads (GET, HEAD) are sampled, and a copy keeps
 * its Host and carries `x-understudy-mirror: warm`: an echo's cache fills with the keys live traffic
 * reads.
 */
export class Mirror {
  #shadows: Shadow[] = [];
  #fraction: number;
  /** Warm-ups on live reads running ({@link warmUp}): they get every read, whatever the sample. */
  readonly #boosts = new Set<WarmUp>();
  /** Warm-ups replaying the read sample ({@link warmUp}). */
  readonly #replays = new Set<WarmUp>();
  /** Whether the last {@link sample} picked the request for the sampled targets (not only for warm-ups). */
  #picked = false;
  #inFlight = 0;
  sent = 0;
  dropped = 0;
  skippedBody = 0;
  failed = 0;
  completed = 0;

  constructor(
    private readonly opts: {
      maxInFlight: number;
      timeoutMs: number;
      random: () => number;
      connections: number;
      /** Cache-warming copies: reads only, Host kept, marked with {@link WARM_MIRROR_HEADER}. @default false */
      warm?: boolean;
      /** Opens the connections (plain, or TLS through the ingress of the shadow's host). @default plain TCP */
      dialer?: UpstreamDialer;
      /** Recent live reads a warm-up replays (a warming mirror only). @default none: warm-ups use live reads */
      sample?: ReadSample;
    },
    shadows: readonly ShadowTarget[],
    fraction: number,
  ) {
    this.#fraction = fraction;
    this.set(shadows, fraction);
  }

  /**
   * True when a request should be mirrored (there are targets and the sample says so). A warming
   * mirror samples only reads: pass the request's method.
   */
  sample(method?: string): boolean {
    if (this.#shadows.length === 0 && this.#boosts.size === 0) return false;
    if (this.opts.warm === true && method !== 'GET' && method !== 'HEAD') return false;
    this.#picked =
      this.#shadows.length > 0 &&
      (this.#fraction >= 1 || (this.#fraction > 0 && this.opts.random() < this.#fraction));
    return this.#picked || this.#boosts.size > 0;
  }

  /** Recent live reads kept for warm-ups to replay (a warming mirror's), or undefined. */
  get readSample(): ReadSample | undefined {
    return this.opts.sample;
  }

  get active(): boolean {
    return this.#shadows.length > 0 || this.#boosts.size > 0;
  }

  /**
   * Warm-up of one target (a warming mirror only): its code paths run on real requests before it serves
   * (a process that has never served runs cold code: V8 has not optimised its request path yet). With
   * reads in the sample, they are replayed to it at full speed — at most `connections` at once, in
   * turn, again from the start when all were sent — until `reads` were answered or failed; without,
   * every live read is copied to it (besides the sampled copies to the others), bounded like the other
   * copies (`maxInFlight`, over it dropped and counted). Either way it ends after `timeoutMs`.
   */
  warmUp(target: ShadowTarget, reads: number, timeoutMs: number): Promise<WarmUpResult> {
    checkTarget(target, 'warmUp');
    const started = performance.now();
    if (this.opts.warm !== true || reads <= 0) return Promise.resolve(noWarmUp());
    const sample = this.opts.sample?.reads() ?? [];
    return new Promise((resolve) => {
      const b: WarmUp = {
        shadow: { target, pool: this.#pool(target) },
        reads,
        started,
        source: sample.length > 0 ? 'replay' : 'live',
        sent: 0,
        completed: 0,
        failed: 0,
        dropped: 0,
        settle: (ended) => {
          if (!this.#boosts.delete(b) && !this.#replays.delete(b)) return;
          clearTimeout(timer);
          // Done: its copies still in flight end quietly (the pool is closed once they have). Timed
          // out: what is still in flight is cut (answers are discarded anyway; an instance that does
          // not answer would hold the connections until the mirror timeout).
          const pool = b.shadow.pool;
          void (ended === 'done' ? pool.close() : pool.destroy()).catch(() => undefined);
          const { source, sent, completed, failed, dropped } = b;
          resolve({
            source,
            sampled: sample.length,
            sent,
            completed,
            failed,
            dropped,
            ms: Number((performance.now() - started).toFixed(1)),
            ended,
          });
        },
      };
      const timer = setTimeout(() => b.settle('timeout'), timeoutMs);
      if (b.source === 'live') {
        this.#boosts.add(b);
        return;
      }
      this.#replays.add(b);
      this.#replay(b, sample);
    });
  }

  /** Sends the sample's reads to a warm-up's target, a bounded number at once, until it has `reads`. */
  #replay(b: WarmUp, sample: readonly SampledRead[]): void {
    const requests: Dispatcher.DispatchOptions[] = sample.map((r) => ({
      method: r.method,
      path: r.path,
      headers: [...r.headers, WARM_MIRROR_HEADER, 'warm'],
    }));
    const concurrency = Math.max(1, Math.min(this.opts.connections, this.opts.maxInFlight));
    let next = 0;
    let inFlight = 0;
    const pump = (): void => {
      while (this.#replays.has(b) && inFlight < concurrency && b.sent < b.reads) {
        const opts = requests[next] as Dispatcher.DispatchOptions;
        next = (next + 1) % requests.length;
        inFlight++;
        b.sent++;
        this.sent++;
        try {
          b.shadow.pool.dispatch(opts, new ReplayHandler(done));
        } catch {
          done(false);
        }
      }
    };
    const done = (ok: boolean): void => {
      inFlight--;
      if (ok) {
        this.completed++;
        b.completed++;
      } else {
        this.failed++;
        b.failed++;
      }
      if (b.completed + b.failed >= b.reads) b.settle('done');
      // Never synchronously from inside dispatch: the next ones go on the next turn.
      else if (this.#replays.has(b)) queueMicrotask(pump);
    };
    pump();
  }

  /** Ends every warm-up now (as timed out). */
  #endWarmUps(): void {
    for (const b of [...this.#boosts, ...this.#replays]) b.settle('timeout');
  }

  #pool(t: ShadowTarget): Pool {
    const connectTimeout = Math.min(this.opts.timeoutMs, 1000);
    const pool = new Pool(`http://${t.host}:${t.port}`, {
      connections: this.opts.connections,
      ...(this.opts.dialer ? { connect: this.opts.dialer.connector(t, connectTimeout) } : { connectTimeout }),
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
    });
    pool.on('connectionError', () => undefined);
    return pool;
  }

  /** Replaces the shadows (and optionally the sampled fraction). Copies in flight to removed shadows finish or fail quietly. */
  set(shadows: readonly ShadowTarget[], fraction?: number): void {
    shadows.forEach((s, i) => checkTarget(s, `shadows[${i}]`));
    if (fraction !== undefined) {
      if (!(fraction >= 0 && fraction <= 1))
        throw new RangeError(`mirror fraction must be within 0..1, got ${fraction}`);
      this.#fraction = fraction;
    }
    const old = new Map(
      this.#shadows.map((s) => [`${s.target.id}\u0000${s.target.host}\u0000${s.target.port}`, s]),
    );
    const next: Shadow[] = [];
    for (const t of shadows) {
      const key = `${t.id}\u0000${t.host}\u0000${t.port}`;
      const kept = old.get(key);
      if (kept) {
        old.delete(key);
        next.push(kept);
        continue;
      }
      next.push({ target: t, pool: this.#pool(t) });
    }
    this.#shadows = next;
    for (const s of old.values()) void s.pool.destroy().catch(() => undefined);
  }

  /** Sends a copy of one request to every shadow. `body` must be held in memory (`null` = skip). */
  send(
    method: string,
    path: string,
    headers: readonly string[],
    hostIndex: number,
    host: string,
    body: Buffer | null,
  ): void {
    if (body === null) {
      this.skippedBody++;
      return;
    }
    let h = headers as string[];
    if (this.opts.warm === true) {
      h = [...headers, WARM_MIRROR_HEADER, 'warm'];
    } else {
      const shadow = shadowHost(host);
      if (hostIndex >= 0) {
        h = headers.slice();
        h[hostIndex] = shadow;
      } else {
        h = [...headers, 'host', shadow];
      }
    }
    const opts: Dispatcher.DispatchOptions = {
      method: method as Dispatcher.HttpMethod,
      path,
      headers: h,
      body: body.length === 0 ? null : body,
    };
    // A warming mirror's sampled targets only when the sample picked the request (a warm-up alone
    // may have asked for it); a shadow mirror may be told to mirror without a sample.
    if (this.opts.warm !== true || this.#picked)
      for (const s of this.#shadows) this.#dispatch(s, opts, undefined);
    this.#picked = false;
    for (const b of this.#boosts) {
      if (b.sent - b.failed >= b.reads) continue; // enough copies in flight or answered
      this.#dispatch(b.shadow, opts, b);
    }
  }

  #dispatch(s: Shadow, opts: Dispatcher.DispatchOptions, boost: WarmUp | undefined): void {
    if (this.#inFlight >= this.opts.maxInFlight) {
      this.dropped++;
      if (boost) boost.dropped++;
      return;
    }
    this.#inFlight++;
    this.sent++;
    if (boost) boost.sent++;
    try {
      s.pool.dispatch(opts, new DiscardHandler(this, boost));
    } catch {
      this.finished(false, boost);
    }
  }

  /** @internal Called by the discard handler. */
  finished(ok: boolean, boost?: WarmUp): void {
    this.#inFlight--;
    if (ok) this.completed++;
    else this.failed++;
    if (!boost) return;
    if (ok) boost.completed++;
    else boost.failed++;
    if (boost.completed + boost.failed >= boost.reads) boost.settle('done');
  }

  stats(): MirrorStats {
    return {
      shadows: this.#shadows.map((s) => s.target.id),
      fraction: this.#fraction,
      sent: this.sent,
      dropped: this.dropped,
      skippedBody: this.skippedBody,
      failed: this.failed,
      completed: this.completed,
      inFlight: this.#inFlight,
    };
  }

  async close(): Promise<void> {
    this.#endWarmUps();
    const shadows = this.#shadows;
    this.#shadows = [];
    await Promise.all(shadows.map((s) => s.pool.destroy().catch(() => undefined)));
  }
}
