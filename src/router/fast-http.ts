// The HTTP fast path: plain GET/HEAD requests are proxied straight between raw sockets — request head
// rewritten as text, response framed (Content-Length, chunked, until-close) and forwarded byte for
// byte — which costs about a third of the CPU of node:http + undici. Any other request (a body, a
// mutating or intercepted method, Expect, Upgrade, HTTP/1.0, anything unusual) hands the connection,
// with the bytes already read, to the full node:http path for the rest of its life.
import type { Socket } from 'node:net';
import { ErrorCode } from '../errors/index.js';
import type { BackendSet, BackendState } from './backend-set.js';
import { ChunkedScanner } from './chunked-scanner.js';
import {
  CRLFCRLF,
  MAX_HEAD,
  skipEmptyLines,
  stepRequestHead,
  type FastRequest,
} from './fast-request-head.js';
import { CONNECT_ERRORS, errorBody, type HttpStats } from './proxy-errors.js';
import type { PoolResource } from './pool-resource.js';
import type { RawConn, RawOwner } from './raw-pool.js';
import { responseHead } from './response-head.js';
import type { Mirror } from './mirror.js';
import { headFields } from './read-sample.js';
import type { ResolvedRouterOptions } from './router-options.js';

/** Shared state of the fast path. */
export interface FastHttpContext {
  readonly opts: ResolvedRouterOptions;
  readonly set: BackendSet<PoolResource>;
  readonly stats: HttpStats;
  readonly mirror: Mirror;
  /** Cache-warming copies of reads for warm-pool echoes. */
  readonly warm: Mirror;
  /** Gives a connection to the full HTTP path, with the bytes read but not yet handled. */
  readonly handoff: (socket: Socket, pending: Buffer) => void;
}

/** Bytes of pipelined requests buffered while one is in flight before the client is paused. */
const MAX_PIPELINED = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** Handles one client connection on the fast path until it closes or is handed off. */
export function handleFastConnection(ctx: FastHttpContext, c: Socket): void {
  new FastConnection(ctx, c).start();
}

class FastConnection implements RawOwner {
  #buf: Buffer = EMPTY;
  // The last request head parsed on this connection (raw bytes) and its result.
  #lastRaw: Buffer | undefined;
  #lastReq: FastRequest | undefined;
  #lastMirror = false;
  #busy = false;
  #gone = false;
  #handedOff = false;
  #closeAfter = false;
  // The exchange in progress.
  #req: FastRequest | undefined;
  #up: RawConn | undefined;
  #backend: BackendState<PoolResource> | undefined;
  #head: Buffer | undefined;
  #headDone = false;
  #mode: 'length' | 'chunked' | 'close' | 'none' = 'none';
  #left = 0;
  #reusable = true;
  #scanner: ChunkedScanner | undefined;
  #attemptStart = 0;
  #retried = false;
  /** The current attempt is on a connection opened for it (the retry after a reset). */
  #fresh = false;
  #deadline = 0;
  #sentToClient = false;
  // Set while an unfinished request head waits: fires at the head deadline.
  #headTimer: NodeJS.Timeout | undefined;
  // The client was answered 400/408 and is being closed: nothing more is read.
  #refused = false;
  readonly #onHeadTimeout = (): void => {
    this.#headTimer = undefined;
    if (!this.#busy && !this.#handedOff && this.#buf.length > 0)
      this.#refuse(
        '408 Request Timeout',
        `the request head did not arrive within ${this.ctx.opts.requestHeadTimeoutMs} ms of its first byte`,
      );
  };
  readonly #onData = (d: Buffer): void => this.#data(d);
  readonly #onClose = (): void => this.#closed();
  readonly #onTimeout = (): void => {
    if (!this.#busy) this.c.destroy();
  };

  constructor(
    private readonly ctx: FastHttpContext,
    private readonly c: Socket,
  ) {}

  start(): void {
    const c = this.c;
    c.setNoDelay(true);
    c.on('data', this.#onData);
    c.on('close', this.#onClose);
    c.on('error', noop);
    if (this.ctx.opts.clientKeepAliveMs > 0) {
      c.setTimeout(this.ctx.opts.clientKeepAliveMs);
      c.on('timeout', this.#onTimeout);
    }
  }

  #data(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    if (!this.#busy) this.#next();
    else if (this.#buf.length > MAX_PIPELINED) this.c.pause();
  }

  #next(): void {
    if (this.#gone || this.#handedOff || this.#refused) return;
    const buf = skipEmptyLines(this.#buf);
    this.#buf = buf;
    if (buf.length === 0) return;
    // A client that repeats its request head (polling, health checks, load generators) is parsed once.
    const mirror = this.ctx.mirror.active || this.ctx.warm.active;
    const last = this.#lastRaw;
    let req: FastRequest;
    let end: number;
    if (
      last !== undefined &&
      buf.length >= last.length + 4 &&
      this.#lastMirror === mirror &&
      buf.compare(last, 0, last.length, 0, last.length) === 0 &&
      buf.indexOf(CRLFCRLF, Math.max(0, last.length - 3)) === last.length
    ) {
      req = this.#lastReq as FastRequest;
      end = last.length;
    } else {
      const step = stepRequestHead(buf, this.c.remoteAddress ?? '', mirror, this.ctx.opts.mutatingMethods);
      switch (step.kind) {
        case 'wait':
          // Bounded by the head deadline, counted from the head's first byte (not reset by each byte).
          this.#headTimer ??= setTimeout(this.#onHeadTimeout, this.ctx.opts.requestHeadTimeoutMs);
          return;
        case 'refuse':
          this.#refuse('400 Bad Request', step.reason);
          return;
        case 'handoff':
          this.#handOff();
          return;
      }
      req = step.req;
      end = step.end - 4;
      this.#lastRaw = Buffer.from(buf.subarray(0, end));
      this.#lastReq = req;
      this.#lastMirror = mirror;
    }
    this.#clearHeadTimer();
    this.#buf = buf.length === end + 4 ? EMPTY : buf.subarray(end + 4);
    this.#busy = true;
    this.#req = req;
    this.#closeAfter = req.closeAfter;
    this.#retried = false;
    this.#deadline = 0;
    this.#sentToClient = false;
    const stats = this.ctx.stats;
    stats.requests++;
    stats.inFlight++;
    stats.fastPath++;
    if (mirror && req.flat) {
      if (this.ctx.mirror.sample())
        this.ctx.mirror.send(req.method, req.target, req.flat, req.hostIndex, req.host, EMPTY);
      if (this.ctx.warm.sample(req.method))
        this.ctx.warm.send(req.method, req.target, req.flat, req.hostIndex, req.host, EMPTY);
    }
    // Recent reads, for a warm-up to replay to a new instance (read-sample.ts); the fast path's are all reads.
    const sample = this.ctx.warm.readSample;
    if (sample?.wants(req.method) === true)
      sample.add(req.method, req.target, req.flat ?? headFields(req.head));
    this.#dispatch(undefined);
  }

  #clearHeadTimer(): void {
    if (this.#headTimer === undefined) return;
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
  }

  /**
   * Answers a request the fast path refuses (400: malformed; 408: head deadline passed) and closes
   * the connection: nothing more is read from it.
   */
  #refuse(status: '400 Bad Request' | '408 Request Timeout', reason: string): void {
    this.#refused = true;
    this.ctx.stats.badRequests++;
    this.#clearHeadTimer();
    this.#buf = EMPTY;
    const c = this.c;
    c.off('data', this.#onData);
    c.resume(); // later bytes are read and dropped, so the client sees the answer and not a reset
    const body = errorBody(ErrorCode.RouterRequest, reason);
    c.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    // A client that never closes its side is cut a head deadline later.
    const cut = setTimeout(() => c.destroy(), this.ctx.opts.requestHeadTimeoutMs).unref();
    c.once('close', () => clearTimeout(cut));
  }

  #handOff(): void {
    if (this.#handedOff) return;
    this.#handedOff = true;
    this.#clearHeadTimer();
    const c = this.c;
    c.off('data', this.#onData);
    c.off('close', this.#onClose);
    c.off('timeout', this.#onTimeout);
    c.setTimeout(0);
    const pending = this.#buf;
    this.#buf = EMPTY;
    this.ctx.stats.handedOff++;
    this.ctx.handoff(c, pending);
  }

  #dispatch(avoid: BackendState<PoolResource> | undefined): void {
    const b = this.ctx.set.select(avoid);
    if (b !== undefined) {
      this.#attempt(b);
      return;
    }
    const now = performance.now();
    if (this.#deadline === 0) this.#deadline = now + this.ctx.opts.waitForBackendMs;
    this.ctx.set.waitFor(
      this.#deadline - now,
      (got) => {
        if (this.#gone) this.#finish();
        else if (got === undefined) {
          this.ctx.stats.errors.noBackend++;
          this.#reply(
            '503 Service Unavailable',
            `no backend of service ${this.ctx.opts.service} is available`,
          );
        } else this.#attempt(got);
      },
      avoid,
    );
  }

  /** `fresh`: on a connection opened for this attempt, not an idle one (the retry after a reset). */
  #attempt(b: BackendState<PoolResource>, fresh = false): void {
    b.inFlight++;
    b.requests++;
    this.#fresh = fresh;
    this.#attemptStart = performance.now();
    b.resource.raw.acquire(this, fresh, (err, conn) => {
      if (err || !conn) {
        b.inFlight--;
        b.errors++;
        if (this.#gone) return this.#finish();
        const code = err?.code ?? '';
        const stats = this.ctx.stats;
        // Acquiring only connects, so a timeout here (ETIMEDOUT) is a connect timeout too.
        if (CONNECT_ERRORS.has(code) || code === 'ETIMEDOUT') {
          stats.errors.connect++;
          this.ctx.set.eject(b);
          stats.redispatched++;
          this.#dispatch(b);
        } else {
          stats.errors.reset++;
          this.#reply('503 Service Unavailable', `backend ${b.id} failed before answering (${code})`);
        }
        return;
      }
      if (this.#gone) {
        b.inFlight--;
        b.resource.raw.release(conn, true);
        return this.#finish();
      }
      this.#backend = b;
      this.#up = conn;
      this.#head = undefined;
      this.#headDone = false;
      this.#mode = 'none';
      this.#left = 0;
      this.#reusable = true;
      this.#scanner = undefined;
      const head = (this.#req as FastRequest).head;
      b.bytesOut += head.length;
      conn.write(head);
    });
  }

  // RawOwner: events of the upstream socket this connection's exchange holds.

  /** @internal `d` is only valid during the call (the shared read buffer): what is kept or sent is copied. */
  onUpstreamData(d: Buffer): void {
    if (this.#backend !== undefined) this.#backend.bytesIn += d.length;
    if (this.#headDone) {
      this.#body(d, 0, EMPTY);
      return;
    }
    let head = this.#head === undefined ? d : Buffer.concat([this.#head, d]);
    for (;;) {
      const end = head.indexOf(CRLFCRLF);
      if (end < 0) {
        if (head.length > MAX_HEAD) this.#fail('reset');
        else this.#head = head === d ? Buffer.from(d) : head;
        return;
      }
      const isHead = (this.#req as FastRequest).method === 'HEAD';
      const parsed = responseHead(head, end, isHead, this.#closeAfter, this.#up as RawConn);
      if (parsed === undefined) {
        this.#fail('malformed');
        return;
      }
      if (parsed.informational) {
        head = head.subarray(end + 4);
        continue;
      }
      this.#head = undefined;
      this.#headDone = true;
      this.#mode = parsed.mode;
      this.#left = parsed.length;
      this.#reusable = !parsed.close;
      if (parsed.mode === 'chunked') this.#scanner = new ChunkedScanner();
      this.#sentToClient = true;
      if (parsed.mode === 'none') {
        if (head.length > end + 4) this.#reusable = false;
        this.#send(parsed.head, head, 0, 0);
        this.#complete();
      } else {
        // Head and first body bytes leave in one write.
        this.#body(head, end + 4, parsed.head);
      }
      return;
    }
  }

  /** @internal */
  onUpstreamEnd(): void {
    if (this.#up === undefined) return;
    if (this.#headDone && this.#mode === 'close') this.#complete();
    else this.#fail('reset');
  }

  /** @internal */
  onUpstreamTimeout(): void {
    this.#fail('timeout');
  }

  /**
   * Forwards body bytes of `buf` from `from`, preceded by `head` (the rewritten response head, or none);
   * completes the exchange when the message ends.
   */
  #body(buf: Buffer, from: number, head: Buffer): void {
    if (this.#mode === 'length') {
      const avail = buf.length - from;
      if (avail > this.#left) this.#reusable = false; // bytes after the body: do not trust the connection
      const take = Math.min(avail, this.#left);
      this.#left -= take;
      this.#send(head, buf, from, from + take);
      if (this.#left === 0) this.#complete();
    } else if (this.#mode === 'chunked') {
      const sc = this.#scanner as ChunkedScanner;
      const endAt = sc.scan(buf, from);
      if (sc.error) {
        this.#fail('reset');
        return;
      }
      this.#send(head, buf, from, endAt < 0 ? buf.length : endAt);
      if (endAt >= 0) {
        if (endAt < buf.length) this.#reusable = false;
        this.#complete();
      }
    } else {
      this.#send(head, buf, from, buf.length);
    }
  }

  #complete(): void {
    const b = this.#backend as BackendState<PoolResource>;
    const u = this.#up as RawConn;
    this.#up = undefined;
    this.#backend = undefined;
    b.inFlight--;
    b.latency.record(performance.now() - this.#attemptStart);
    const close = this.#mode === 'close';
    b.resource.raw.release(u, this.#reusable && !close);
    if (close) this.#closeAfter = true;
    this.#finish();
  }

  /** The exchange failed: `malformed` is a response head the fast path refuses to forward (502). */
  #fail(why: 'reset' | 'timeout' | 'malformed'): void {
    const b = this.#backend;
    const u = this.#up;
    if (b === undefined || u === undefined) return;
    this.#up = undefined;
    this.#backend = undefined;
    b.inFlight--;
    b.errors++;
    b.resource.raw.release(u, false);
    if (this.#gone) return this.#finish();
    const stats = this.ctx.stats;
    if (this.#sentToClient) {
      stats.errors.midResponse++;
      this.c.destroy();
      return this.#finish();
    }
    stats.errors[why === 'malformed' ? 'reset' : why]++;
    if (why === 'malformed') {
      this.#reply(
        '502 Bad Gateway',
        `backend ${b.id} of service ${this.ctx.opts.service} sent a malformed response head; it was not forwarded`,
      );
      return;
    }
    if (why === 'reset' && this.#fresh && this.ctx.opts.retryIdempotent) {
      // The retry, on a new connection, was reset too: the backend is dying (a process being torn down
      // still completes handshakes for a moment). Ejected; the request waits for another backend.
      this.#fresh = false;
      this.ctx.set.eject(b);
      stats.redispatched++;
      this.#dispatch(b);
      return;
    }
    if (why === 'reset' && !this.#retried && this.ctx.opts.retryIdempotent) {
      this.#retried = true;
      stats.retries++;
      // A killed backend resets all its connections at once, and the idle ones may not have been seen
      // closing yet: the retry goes to another backend if there is one, else on a new connection.
      if (this.ctx.set.select(b) === b) this.#attempt(b, true);
      else this.#dispatch(b);
      return;
    }
    this.#reply(
      '503 Service Unavailable',
      `backend ${b.id} of service ${this.ctx.opts.service} failed before answering (${why}); the request was not retried`,
    );
  }

  /**
   * Writes `head` and `buf[from, to)` to the client as one buffer — a copy, since `buf` is the shared
   * upstream read buffer — and pauses the upstream while the client does not keep up.
   */
  #send(head: Buffer, buf: Buffer, from: number, to: number): void {
    const hl = head.length;
    const n = to - from;
    if (hl + n === 0) return;
    const out = Buffer.allocUnsafe(hl + n);
    if (hl > 0) head.copy(out, 0);
    if (n > 0) buf.copy(out, hl, from, to);
    if (!this.c.write(out)) {
      const u = this.#up;
      if (u === undefined) return;
      u.pause();
      this.c.once('drain', () => u.resume());
    }
  }

  /** Answers the request with a router-made error (`UNDERSTUDY_ERR_ROUTER_UNAVAILABLE`). */
  #reply(status: '502 Bad Gateway' | '503 Service Unavailable', message: string): void {
    const body = errorBody(ErrorCode.RouterUnavailable, message);
    const unavailable = status.startsWith('503');
    if (unavailable) this.ctx.stats.unavailable++;
    const retry = unavailable ? 'retry-after: 1\r\n' : '';
    this.c.write(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${retry}\r\n${body}`,
    );
    this.#finish();
  }

  #finish(): void {
    if (!this.#busy) return;
    this.#busy = false;
    this.#req = undefined;
    const stats = this.ctx.stats;
    stats.inFlight--;
    stats.responses++;
    if (this.#gone) return;
    if (this.#closeAfter) {
      this.c.end();
      return;
    }
    if (this.c.isPaused()) this.c.resume();
    this.#next();
  }

  #closed(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#clearHeadTimer();
    if (!this.#busy) return;
    this.ctx.stats.errors.clientAborted++;
    // An exchange with its upstream socket is cut; one waiting for a backend finishes in its callback.
    if (this.#up) this.#up.destroy();
  }
}

function noop(): void {}
