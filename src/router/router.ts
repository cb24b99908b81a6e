import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { BackendSet, type BackendStats, type FencingStats } from './backend-set.js';
import { handleFastConnection, type FastHttpContext } from './fast-http.js';
import { PoolResource } from './pool-resource.js';
import { handleHttpRequest, type HttpProxyContext } from './http-proxy.js';
import { newHttpStats, refuseConnect, type HttpStats } from './proxy-errors.js';
import { Mirror, noWarmUp, type MirrorStats, type WarmUpResult } from './mirror.js';
import { ReadSample, readSampleStats, type ReadSampleStats } from './read-sample.js';
import { MutationGate, type PauseStats } from './mutation-gate.js';
import {
  resolveRouterOptions,
  type BackendTarget,
  type ResolvedRouterOptions,
  type RouterOptions,
  type ShadowTarget,
} from './router-options.js';
import {
  handleTcpConnection,
  newTcpStats,
  SocketsResource,
  type TcpProxyContext,
  type TcpStats,
} from './tcp-proxy.js';
import { UpstreamDialer, type UpstreamStats, type UpstreamTls } from './upstream-tls.js';

/** Event-loop delay of the process the router runs in, ms. */
export interface EventLoopDelayStats {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Everything {@link Router.stats} reports: plain data, safe to serialise. */
export interface RouterStats {
  service: string;
  mode: 'http' | 'tcp';
  address: { host: string; port: number };
  /** Ids of the serving set, in order. */
  serving: string[];
  /** Requests (or connections) waiting for a backend right now. */
  waiting: number;
  fencing: FencingStats;
  backends: BackendStats[];
  /** HTTP mode only. */
  http: HttpStats | undefined;
  /** TCP mode only. */
  tcp: TcpStats | undefined;
  mirror: MirrorStats;
  /** Cache-warming copies of reads sent to warm-pool echoes ({@link Router.setWarmReads}) and warm-ups: their cost. */
  warmReads: MirrorStats;
  /** The sample of recent live reads a warm-up replays (HTTP mode; zeros in TCP mode). */
  readSample: ReadSampleStats;
  pause: PauseStats;
  /** Connections opened to backends and shadows: plain, or TLS through a host's ingress ({@link Router.setUpstreamTls}). */
  upstream: UpstreamStats;
  eventLoopDelay: EventLoopDelayStats;
}

/** Result of a serving-set change. */
export interface SetBackendsResult {
  /** Ids refused because their epoch is older than the router's epoch. */
  refused: string[];
}

/**
 * The embedded data plane of one service: listens on the service's public address and forwards to
 * its serving set (the primaries), as an HTTP/1.1 reverse proxy or a TCP byte pipe.
 *
 * - {@link setBackends}/{@link switchTo} swap the serving set atomically: every new request goes to
 *   the new set at once; a live old backend drains; requests that find no backend wait up to
 *   `waitForBackendMs` for one (a switch in progress) before 503.
 * - A backend that fails before answering: the request is re-sent if the backend refused the
 *   connection (never received it), or retried once if idempotent; otherwise the client gets 503
 *   `{error:{code:'UNDERSTUDY_ERR_ROUTER_UNAVAILABLE', message}}`.
 * - {@link setEpoch} fences: backends of older epochs are cut and never used again.
 * - {@link pause}/{@link resume} hold mutating requests for a planned switchover.
 * - `interceptor`/`afterResponse` (options) are the replication layer's hooks; {@link setShadows}
 *   mirrors traffic to shadows.
 */
export class Router {
  readonly #opts: ResolvedRouterOptions;
  readonly #server: HttpServer | NetServer;
  readonly #set: BackendSet<PoolResource> | BackendSet<SocketsResource>;
  readonly #mirror: Mirror;
  readonly #warm: Mirror;
  readonly #gate: MutationGate;
  readonly #http: HttpProxyContext | undefined;
  readonly #tcp: TcpProxyContext | undefined;
  readonly #loopDelay: IntervalHistogram;
  readonly #dialer = new UpstreamDialer();
  readonly #sockets = new Set<Socket>();
  /** The node:http server that receives the fast path's handed-off connections (fast path only). */
  #handoffServer: HttpServer | undefined;
  #address: { host: string; port: number } = { host: '', port: 0 };
  #closing: Promise<void> | undefined;

  private constructor(opts: ResolvedRouterOptions) {
    this.#opts = opts;
    this.#gate = new MutationGate({ maxHeld: opts.maxPausedRequests, maxPauseMs: opts.maxPauseMs });
    this.#mirror = new Mirror(
      {
        maxInFlight: opts.maxMirrorInFlight,
        timeoutMs: opts.mirrorTimeoutMs,
        random: opts.random,
        connections: 16,
        dialer: this.#dialer,
      },
      opts.shadows,
      opts.mirrorFraction,
    );
    this.#warm = new Mirror(
      {
        maxInFlight: opts.maxMirrorInFlight,
        timeoutMs: opts.mirrorTimeoutMs,
        random: opts.random,
        connections: 8,
        warm: true,
        dialer: this.#dialer,
        ...(opts.mode === 'http' ? { sample: new ReadSample() } : {}),
      },
      [],
      0,
    );
    const setOpts = {
      ejectMs: opts.ejectMs,
      drainTimeoutMs: opts.drainTimeoutMs,
      maxWaiting: opts.maxWaiting,
    };
    if (opts.mode === 'http') {
      const set = new BackendSet<PoolResource>(
        (t) => new PoolResource(t, opts, this.#dialer),
        setOpts,
        opts.epoch,
      );
      this.#set = set;
      const ctx: HttpProxyContext = {
        opts,
        set,
        mirror: this.#mirror,
        warm: this.#warm,
        gate: this.#gate,
        stats: newHttpStats(),
        nextId: 0,
      };
      this.#http = ctx;
      const server = createHttpServer(
        {
          keepAliveTimeout: opts.clientKeepAliveMs,
          noDelay: true,
          headersTimeout: opts.requestHeadTimeoutMs,
          requestTimeout: opts.requestTimeoutMs,
          // How often node:http looks for connections past these deadlines.
          connectionsCheckingInterval: Math.min(1000, Math.max(50, opts.requestHeadTimeoutMs / 4)),
        },
        (req, res) => handleHttpRequest(ctx, req, res),
      );
      // CONNECT (authority-form) never reaches the request listener: refused with 400 here.
      server.on('connect', (_req, socket: Duplex) => refuseConnect(ctx.stats, socket));
      if (opts.fastPath) {
        // The public listener is the raw fast path; the node:http server only receives handed-off
        // connections. It never listens itself, and node arms its headersTimeout/requestTimeout checks
        // on 'listening': without this, handed-off requests would have no deadline at all.
        server.emit('listening');
        this.#handoffServer = server;
        const fast: FastHttpContext = {
          opts,
          set,
          stats: ctx.stats,
          mirror: this.#mirror,
          warm: this.#warm,
          handoff: (socket, pending) => {
            server.emit('connection', socket);
            if (pending.length > 0) socket.emit('data', pending);
            socket.resume();
          },
        };
        this.#server = createTcpServer({ noDelay: true }, (socket) => handleFastConnection(fast, socket));
      } else {
        this.#server = server;
      }
    } else {
      const set = new BackendSet<SocketsResource>(() => new SocketsResource(), setOpts, opts.epoch);
      this.#set = set;
      const ctx: TcpProxyContext = { opts, set, stats: newTcpStats(), dialer: this.#dialer };
      this.#tcp = ctx;
      this.#server = createTcpServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) =>
        handleTcpConnection(ctx, socket),
      );
    }
    this.#server.maxConnections = opts.maxConnections;
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    this.#loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.#loopDelay.enable();
  }

  /**
   * Starts a router listening on `options.host:options.port`.
   * Thrown: `UNDERSTUDY_ERR_ROUTER_CONFIG` for bad options, `UNDERSTUDY_ERR_PORT` when the address is taken.
   */
  static async create(options: RouterOptions): Promise<Router> {
    const opts = resolveRouterOptions(options);
    const router = new Router(opts);
    router.setBackends(opts.backends);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new UnderstudyError(
            ErrorCode.Port,
            `router for ${opts.service} cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message}`,
            { cause: err, details: { host: opts.host, port: opts.port } },
          ),
        );
      };
      router.#server.once('error', onError);
      router.#server.listen(opts.port, opts.host, () => {
        router.#server.off('error', onError);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await router.close();
      throw err;
    });
    const a = router.#server.address() as AddressInfo;
    router.#address = { host: a.address, port: a.port };
    return router;
  }

  /** The bound public address (the real port when 0 was asked). */
  get address(): { host: string; port: number } {
    return { ...this.#address };
  }

  /** `http://host:port` of the public address (HTTP mode). */
  get url(): string {
    const h = this.#address.host.includes(':') ? `[${this.#address.host}]` : this.#address.host;
    return `http://${h}:${this.#address.port}`;
  }

  get service(): string {
    return this.#opts.service;
  }

  /** The current fencing epoch. */
  get epoch(): number {
    return this.#set.epoch;
  }

  /** Ids of the serving set. */
  get backends(): string[] {
    return this.#set.ids();
  }

  /**
   * Atomically replaces the serving set (the primaries of a horizontally scaled service). New requests
   * use the new set at once; backends that left drain and their connections close afterwards;
   * waiting requests are released. Backends whose epoch is older than {@link epoch} are refused.
   */
  setBackends(backends: readonly BackendTarget[]): SetBackendsResult {
    return { refused: this.#set.set(backends) };
  }

  /**
   * Switches the service to one primary (promotion). When `target.epoch` is newer than the router's
   * epoch, the epoch is raised first, so older backends are fenced before the new one serves.
   */
  switchTo(target: BackendTarget): SetBackendsResult {
    const epoch = target.epoch ?? 0;
    if (epoch > this.#set.epoch) this.#set.setEpoch(epoch);
    return this.setBackends([target]);
  }

  /**
   * Dials `target` once through its host's TLS ingress and closes the connection: the ingress's check of
   * the instance is then done when a {@link switchTo} sends it traffic (see `UpstreamDialer.warm`).
   * Resolves whether it connected (false at once for a target reached in plain TCP).
   */
  warmUpstream(target: { id: string; host: string; port: number }, timeoutMs = 1000): Promise<boolean> {
    return this.#dialer.warm(target, timeoutMs);
  }

  /**
   * Raises the fencing epoch: backends (serving or draining) with an older epoch have their
   * connections cut at once and are never used again. Thrown when the epoch would go backwards.
   */
  setEpoch(epoch: number): void {
    this.#set.setEpoch(epoch);
  }

  /**
   * Holds new mutating requests (bounded queue, `maxPauseMs` at most) and resolves once the mutating
   * requests already forwarded have been answered. Reads keep flowing.
   */
  pause(): Promise<void> {
    return this.#gate.pause();
  }

  /** Forwards the held mutating requests in arrival order (to the serving set as it is now). */
  resume(): void {
    this.#gate.resume();
  }

  /** Replaces the shadows that receive mirrored requests, and optionally the sampled fraction (0..1). */
  setShadows(shadows: readonly ShadowTarget[], fraction?: number): void {
    try {
      this.#mirror.set(shadows, fraction);
    } catch (err) {
      throw err instanceof UnderstudyError
        ? err
        : new UnderstudyError(ErrorCode.RouterConfig, (err as Error).message, {
            details: { field: 'mirrorFraction' },
          });
    }
  }

  /**
   * Cache warming (HTTP mode): a sampled `fraction` (0..1) of live reads (GET, HEAD) is copied to each of
   * `targets` — warm-pool echoes — fire-and-forget, responses discarded, marked
   * `x-understudy-mirror: warm`, so their caches hold what live traffic reads when one is promoted.
   * Bounded like shadow mirroring (`maxMirrorInFlight`); counted in {@link RouterStats.warmReads}.
   */
  setWarmReads(targets: readonly ShadowTarget[], fraction: number): void {
    try {
      this.#warm.set(this.#opts.mode === 'http' ? targets : [], fraction);
    } catch (err) {
      throw err instanceof UnderstudyError
        ? err
        : new UnderstudyError(ErrorCode.RouterConfig, (err as Error).message, {
            details: { field: 'warmReads' },
          });
    }
  }

  /**
   * Warms a new instance's code paths before it serves (HTTP mode): the router's sample of recent live
   * reads ({@link RouterStats.readSample}: GET and HEAD, a few headers, never credentials) is replayed
   * to `target` at full speed, a bounded number at once, answers discarded, marked
   * `x-understudy-mirror: warm`, until it has answered `reads` or `timeoutMs` has passed, whichever is
   * first. With no read in the sample (the router has served none yet), every live read is copied to
   * it instead until then. Used after a runtime-state import: the caches are full, but a process that
   * has never served runs its request path unoptimised. Counted in {@link RouterStats.warmReads} too.
   * TCP mode: resolves at once.
   */
  warmUp(target: ShadowTarget, reads: number, timeoutMs: number): Promise<WarmUpResult> {
    if (this.#opts.mode !== 'http') return Promise.resolve(noWarmUp());
    return this.#warm.warmUp(target, reads, timeoutMs);
  }

  /**
   * TLS to backends and shadows on other hosts (undefined: plain TCP everywhere): each is then dialled
   * with this client identity at the TLS ingress of its host's agent, naming the instance and port in
   * the handshake's SNI; one on this machine (a loopback or local interface address), or on a host
   * without an ingress, stays plain. Applies to connections opened from now on: call it before the
   * first backend is set (open keep-alive connections are kept).
   */
  setUpstreamTls(tls: UpstreamTls | undefined): void {
    this.#dialer.set(tls);
  }

  /** Counters and per-backend latency, as plain data. */
  stats(): RouterStats {
    const d = this.#loopDelay;
    const ms = (ns: number): number => (Number.isFinite(ns) ? ns / 1e6 : 0);
    return {
      service: this.#opts.service,
      mode: this.#opts.mode,
      address: this.address,
      serving: this.#set.ids(),
      waiting: this.#set.waiting,
      fencing: this.#set.fencing(),
      backends: this.#set.stats(),
      http: this.#http ? { ...this.#http.stats, errors: { ...this.#http.stats.errors } } : undefined,
      tcp: this.#tcp ? { ...this.#tcp.stats } : undefined,
      mirror: this.#mirror.stats(),
      warmReads: this.#warm.stats(),
      readSample: readSampleStats(this.#warm.readSample),
      pause: this.#gate.stats(),
      upstream: this.#dialer.stats(),
      eventLoopDelay: {
        p50Ms: ms(d.percentile(50)),
        p99Ms: ms(d.percentile(99)),
        maxMs: ms(d.max),
        meanMs: ms(d.mean),
      },
    };
  }

  /**
   * Stops listening and closes every connection. With `graceMs`, in-flight requests get that long to
   * finish first. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.graceMs ?? 0);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#loopDelay.disable();
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#handoffServer?.close(noop); // stops its deadline checks; it never listened
    if (this.#server instanceof Object && 'closeIdleConnections' in this.#server)
      (this.#server as HttpServer).closeIdleConnections();
    this.#gate.close();
    if (graceMs > 0) {
      const graceful = this.#set.close(false);
      await Promise.race([graceful, new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    await this.#set.close(true);
    for (const s of this.#sockets) s.destroy();
    await this.#mirror.close();
    await this.#warm.close();
    await serverClosed;
  }
}

function noop(): void {}
