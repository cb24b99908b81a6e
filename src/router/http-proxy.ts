import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import type { BackendSet, BackendState } from './backend-set.js';
import { connectionQueue, type ConnectionQueue, type QueuedExchange } from './connection-queue.js';
import type { HoldOutcome, InterceptDecision, RouterRequest } from './intercept.js';
import type { Mirror } from './mirror.js';
import type { PoolResource } from './pool-resource.js';
import type { MutationGate } from './mutation-gate.js';
import { classify, errorBody, type HttpErrorKind, type HttpStats } from './proxy-errors.js';
import {
  downstreamResponseHeaders,
  headBytes,
  headersAsForwarded,
  upstreamRequestHeaders,
} from './proxy-headers.js';
import {
  normaliseRequestTarget,
  pathMayMatch,
  type AcceptedTarget,
  type RequestTarget,
} from './request-target.js';
import type { ResolvedRouterOptions } from './router-options.js';
import { Attempt, type AttemptOwner } from './upstream-attempt.js';

const EMPTY = Buffer.alloc(0);

/** Shared state of the HTTP data plane, used by every exchange. */
export interface HttpProxyContext {
  readonly opts: ResolvedRouterOptions;
  readonly set: BackendSet<PoolResource>;
  readonly mirror: Mirror;
  /** Cache-warming copies of reads for warm-pool echoes. */
  readonly warm: Mirror;
  readonly gate: MutationGate;
  readonly stats: HttpStats;
  nextId: number;
}

const kExchange = Symbol('exchange');
type ResponseWithExchange = ServerResponse & { [kExchange]?: Exchange | undefined };

// One shared listener instead of a closure per request.
function onResponseClose(this: ResponseWithExchange): void {
  this[kExchange]?.closed();
  this[kExchange] = undefined;
}

/** One client request through the proxy, from arrival to its answer (or failure). */
class Exchange implements QueuedExchange, AttemptOwner {
  attempt = 0;
  #abort: ((err?: Error) => void) | undefined;
  #backend: BackendState<PoolResource> | undefined;
  /** The backend's epoch when the current attempt was sent (what an `epochHeader` carried). */
  #sentEpoch = 0;
  #attemptStart = 0;
  #body: Buffer | null = EMPTY;
  #stream = false;
  #retried = false;
  /** The current attempt is on a connection opened for it (the retry after a reset). */
  #fresh = false;
  #redispatchedAfterCut = false;
  #deadline = 0;
  #responded = false;
  #upstreamDone = false;
  #clientGone = false;
  #finished = false;
  /** True while a callback (interceptor, backend wait, upstream) owns the exchange and will finish it. */
  #pending = false;
  #mutating: boolean;
  #gateCounted = false;
  #status = 0;
  #backendStatus = 0;
  #headers: string[] = [];
  #resume: (() => void) | undefined;
  #held: Buffer[] | undefined;
  #decision: InterceptDecision | undefined;
  /** Index in the upstream headers of the value of the decision's `epochHeader` (-1: none), set per attempt. */
  #epochAt = -1;
  #rreq: RouterRequest | undefined;
  readonly #startedAt = performance.now();
  readonly #up: ReturnType<typeof upstreamRequestHeaders>;
  readonly #method: string;
  readonly #target: RequestTarget;
  /** The normalised origin-form target: what is classified, intercepted, mirrored and forwarded. */
  readonly #path: string;

  constructor(
    private readonly ctx: HttpProxyContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly conn: ConnectionQueue<Exchange>,
  ) {
    this.#method = req.method ?? 'GET';
    // Normalised once, here: nothing below reads req.url.
    this.#target = normaliseRequestTarget(this.#method, req.url ?? '/');
    this.#path = this.#target.ok ? this.#target.path : '/';
    this.#up = upstreamRequestHeaders(
      req.rawHeaders,
      req.socket.remoteAddress ?? '',
      'http',
      this.#target.ok ? this.#target.authority : undefined,
    );
    // A method override (X-HTTP-Method-Override: PUT on a POST) makes a request mutating for a backend
    // that honours it: classify under every method the backend may act on.
    const { mutatingMethods } = ctx.opts;
    const overrides = this.#up.methodOverrides;
    this.#mutating =
      mutatingMethods.has(this.#method) ||
      (overrides !== undefined && overrides.some((m) => mutatingMethods.has(m)));
    (res as ResponseWithExchange)[kExchange] = this;
    res.on('close', onResponseClose);
  }

  /** True once the exchange is over (answered, failed, or its client gone). */
  get finished(): boolean {
    return this.#finished;
  }

  /** @internal The client connection closed; an exchange not finished yet lost its client. */
  closed(): void {
    if (!this.#finished && !this.res.writableFinished) this.#onClientGone();
  }

  start(): void {
    if (this.#finished) return;
    const t = this.#target;
    if (!t.ok) {
      this.#badRequest(t.reason);
      return;
    }
    if (this.#up.hostCount > 1) {
      this.#badRequest('more than one Host header');
      return;
    }
    if (t.path === '*') {
      // `OPTIONS *` asks about the server in general; the router is that server (undici cannot send '*').
      this.res.writeHead(200, { 'content-length': '0' });
      this.res.end();
      this.#status = 200;
      this.#finish();
      return;
    }
    if (this.#mutating) {
      const go = (): void => {
        if (this.#clientGone) return;
        this.ctx.gate.began();
        this.#gateCounted = true;
        this.#readBody();
      };
      this.ctx.gate.admit(go, () =>
        this.#unavailable('paused', 'mutations are paused for a switchover and the hold expired'),
      );
    } else {
      this.#readBody();
    }
  }

  #readBody(): void {
    const up = this.#up;
    if (up.contentLength <= 0 && !up.chunked) {
      this.#afterBody();
      return;
    }
    const max = this.ctx.opts.maxBufferedBodyBytes;
    if (up.contentLength > max) {
      this.#body = null;
      this.#stream = true;
      this.#afterBody();
      return;
    }
    const req = this.req;
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > max) {
        cleanup();
        req.pause();
        req.unshift(Buffer.concat(chunks, size));
        this.#body = null;
        this.#stream = true;
        this.#afterBody();
      }
    };
    const onEnd = (): void => {
      cleanup();
      this.#body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      this.#afterBody();
    };
    const onError = (): void => {
      cleanup();
      this.#onClientGone();
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  }

  #afterBody(): void {
    if (this.#clientGone) return;
    const { interceptor } = this.ctx.opts;
    if (interceptor === undefined || !this.#mutating || !this.#pathIntercepted()) {
      this.#forward();
      return;
    }
    this.ctx.stats.intercepted++;
    const req = this.req;
    const t = this.#target as AcceptedTarget;
    const rreq: RouterRequest = {
      id: ++this.ctx.nextId,
      service: this.ctx.opts.service,
      method: this.#method,
      path: this.#path,
      headers: headersAsForwarded(req.headers, t.authority, this.#up),
      body: this.#body,
      remoteAddress: req.socket.remoteAddress ?? '',
      receivedAt: this.#startedAt,
    };
    this.#rreq = rreq;
    let d: ReturnType<typeof interceptor>;
    try {
      d = interceptor(rreq);
    } catch (err) {
      this.#interceptFailed(err);
      return;
    }
    if (d !== undefined && typeof (d as Promise<unknown>).then === 'function') {
      this.#pending = true;
      (d as Promise<InterceptDecision | undefined>).then(
        (x) => {
          this.#pending = false;
          this.#decided(x);
        },
        (err: unknown) => {
          this.#pending = false;
          this.#interceptFailed(err);
        },
      );
    } else {
      this.#decided(d as InterceptDecision | undefined);
    }
  }

  #pathIntercepted(): boolean {
    return pathMayMatch(this.#path, this.ctx.opts.interceptPathPrefixes);
  }

  #interceptFailed(err: unknown): void {
    if (this.#clientGone) {
      this.#finish('clientAborted');
      return;
    }
    this.ctx.stats.errors.intercept++;
    if (isUnderstudyError(err)) this.#reply(503, err.code, err.message, 'intercept');
    else
      this.#reply(
        503,
        ErrorCode.RouterUnavailable,
        `replication refused the request: ${err instanceof Error ? err.message : String(err)}`,
        'intercept',
      );
  }

  #decided(d: InterceptDecision | undefined): void {
    if (this.#clientGone) {
      this.#finish('clientAborted');
      return;
    }
    this.#decision = d;
    if (d?.respond) {
      const r = d.respond;
      const body = r.body ?? '';
      this.res.writeHead(r.status, { 'content-length': String(Buffer.byteLength(body)), ...r.headers });
      this.res.end(body);
      this.#status = r.status;
      this.#finish();
      return;
    }
    if (d?.headers) for (const k of Object.keys(d.headers)) this.#up.headers.push(k, d.headers[k] as string);
    // The router's epoch for now (what a shadow copy carries); #send writes each attempt's backend's.
    if (d?.epochHeader) this.#epochAt = this.#up.headers.push(d.epochHeader, String(this.ctx.set.epoch)) - 1;
    this.#forward();
  }

  #forward(): void {
    const { mirror, warm } = this.ctx;
    if (mirror.active && (this.#decision?.mirror ?? mirror.sample())) {
      const up = this.#up;
      mirror.send(this.#method, this.#path, up.headers, up.hostIndex, up.host, this.#body);
    }
    if (warm.active && warm.sample(this.#method)) {
      const up = this.#up;
      warm.send(this.#method, this.#path, up.headers, up.hostIndex, up.host, this.#body);
    }
    // Recent reads, for a warm-up to replay to a new instance (read-sample.ts): reads without a body only.
    const sample = warm.readSample;
    if (sample?.wants(this.#method) === true && !this.#mutating && this.#body?.length === 0)
      sample.add(this.#method, this.#path, this.#up.headers);
    this.#next(undefined);
  }

  #next(avoid: BackendState<PoolResource> | undefined): void {
    const b = this.ctx.set.select(avoid);
    if (b !== undefined) {
      this.#send(b);
      return;
    }
    const now = performance.now();
    if (this.#deadline === 0) this.#deadline = now + this.ctx.opts.waitForBackendMs;
    this.#pending = true;
    this.ctx.set.waitFor(
      this.#deadline - now,
      (got) => {
        this.#pending = false;
        if (this.#clientGone) this.#finish('clientAborted');
        else if (got === undefined)
          this.#unavailable('noBackend', `no backend of service ${this.ctx.opts.service} is available`);
        else this.#send(got);
      },
      avoid,
    );
  }

  /** `fresh`: on a connection opened for this attempt, not a pooled one (the retry after a reset). */
  #send(b: BackendState<PoolResource>, fresh = false): void {
    this.#backend = b;
    this.#fresh = fresh;
    this.#pending = true;
    b.inFlight++;
    b.requests++;
    const n = ++this.attempt;
    this.#abort = undefined;
    this.#attemptStart = performance.now();
    // Per attempt: a request held across a switch or retried elsewhere carries its backend's epoch.
    this.#sentEpoch = b.epoch;
    if (this.#epochAt >= 0) this.#up.headers[this.#epochAt] = String(b.epoch);
    // The request head as sent (`METHOD path HTTP/1.1\r\n`, headers, blank line); the body as it is sent.
    b.bytesOut += this.#method.length + this.#path.length + 11 + headBytes(this.#up.headers);
    const body = this.#stream ? this.req : this.#body === null || this.#body.length === 0 ? null : this.#body;
    (fresh ? b.resource.once() : b.resource.pool).dispatch(
      {
        method: this.#method as Dispatcher.HttpMethod,
        path: this.#path,
        headers: this.#up.headers,
        body,
      },
      new Attempt(this, n, b),
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort(new Error('client went away'));
  }

  onResponse(status: number, raw: Buffer[], resume: () => void): boolean {
    this.#responded = true;
    this.#backendStatus = status;
    this.#resume = resume;
    const headers = downstreamResponseHeaders(raw);
    const hold = this.#decision?.holdResponse;
    if (hold !== undefined && this.#backend !== undefined) {
      this.#held = [];
      this.#headers = headers;
      this.#status = status;
      let p: Promise<HoldOutcome>;
      try {
        p = hold({ statusCode: status, backendId: this.#backend.id, epoch: this.#sentEpoch });
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (o) => this.#released(o),
        (err: unknown) =>
          this.#released({
            release: false,
            status: 503,
            code: isUnderstudyError(err) ? err.code : ErrorCode.RouterUnavailable,
            message: err instanceof Error ? err.message : String(err),
          }),
      );
      return true;
    }
    this.#status = status;
    this.res.writeHead(status, headers);
    return true;
  }

  #released(o: HoldOutcome): void {
    const held = this.#held;
    if (held === undefined || this.#finished) return;
    this.#held = undefined;
    if (this.#clientGone) {
      this.#finish();
      return;
    }
    if (!o.release) {
      if (!this.#upstreamDone) this.#abort?.(new Error('response replaced by replication'));
      this.#reply(o.status, o.code, o.message, undefined);
      return;
    }
    this.res.writeHead(this.#status, this.#headers);
    for (const c of held) this.res.write(c);
    if (this.#upstreamDone) {
      this.res.end();
      this.#finish();
    }
  }

  onChunk(chunk: Buffer): boolean {
    if (this.#held !== undefined) {
      this.#held.push(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    const resume = this.#resume;
    if (resume) this.res.once('drain', resume);
    return false;
  }

  onEnd(): void {
    this.#upstreamDone = true;
    this.#pending = false;
    const b = this.#backend as BackendState<PoolResource>;
    b.inFlight--;
    b.latency.record(performance.now() - this.#attemptStart);
    if (this.#finished || this.#held !== undefined) return;
    this.res.end();
    this.#finish();
  }

  onUpstreamError(err: Error): void {
    this.#pending = false;
    const b = this.#backend as BackendState<PoolResource>;
    b.inFlight--;
    b.errors++;
    if (this.#finished) return;
    if (this.#clientGone) {
      this.#finish('clientAborted');
      return;
    }
    const stats = this.ctx.stats;
    if (this.#responded) {
      stats.errors.midResponse++;
      if (this.res.headersSent) {
        this.res.destroy();
        this.#status = 0;
        this.#finish('midResponse');
      } else {
        this.#held = undefined;
        this.#unavailable('midResponse', `backend ${b.id} failed while answering`);
      }
      return;
    }
    const kind = classify(err);
    stats.errors[kind]++;
    const replayable = !this.#stream;
    // The router itself cut this backend (fenced by a newer epoch, or drained): it is gone for good, so an
    // idempotent request goes to the new serving set whatever its retry budget (a failover in progress).
    const cutByUs = (err as { code?: string }).code === 'UND_ERR_DESTROYED' && b.draining;
    if (cutByUs && replayable && !this.#redispatchedAfterCut && this.#idempotent()) {
      this.#redispatchedAfterCut = true;
      stats.redispatched++;
      // Asynchronously: a destroyed pool fails dispatches synchronously.
      setImmediate(() => this.#next(b));
      return;
    }
    if (kind === 'connect') {
      this.ctx.set.eject(b);
      if (replayable) {
        stats.redispatched++;
        this.#next(b);
        return;
      }
    } else if (kind === 'reset' && replayable && this.#fresh && this.#idempotent()) {
      // The retry, on a new connection, was reset too: the backend is dying (a process being torn down
      // still completes handshakes for a moment). Ejected; the request waits for another backend.
      this.ctx.set.eject(b);
      stats.redispatched++;
      setImmediate(() => this.#next(b));
      return;
    } else if (kind === 'reset' && replayable && !this.#retried && this.#idempotent()) {
      this.#retried = true;
      stats.retries++;
      // A killed backend resets all its pooled connections at once, and the pool may not have seen the
      // others close yet: the retry goes to another backend if there is one, else on a new connection
      // (answered, or refused: a connect error, which ejects the backend and waits for another).
      // Asynchronously, as the redispatch above.
      setImmediate(() => {
        if (this.ctx.set.select(b) === b) this.#send(b, true);
        else this.#next(b);
      });
      return;
    }
    this.#unavailable(
      kind,
      `backend ${b.id} of service ${this.ctx.opts.service} failed before answering (${kind}: ${(err as { code?: string }).code ?? err.message}); the request was not retried`,
    );
  }

  #idempotent(): boolean {
    const { opts } = this.ctx;
    if (!opts.retryIdempotent) return false;
    const m = this.#method;
    if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return true;
    return opts.retryPutDelete && (m === 'PUT' || m === 'DELETE');
  }

  #unavailable(kind: HttpErrorKind, message: string): void {
    if (kind === 'noBackend' || kind === 'paused') this.ctx.stats.errors[kind]++;
    this.#reply(503, ErrorCode.RouterUnavailable, message, kind);
  }

  /** Refuses a request the router cannot forward unambiguously; the connection closes after the answer. */
  #badRequest(message: string): void {
    this.ctx.stats.badRequests++;
    this.res.shouldKeepAlive = false;
    this.#reply(400, ErrorCode.RouterRequest, message, undefined);
  }

  #reply(status: number, code: string, message: string, kind: HttpErrorKind | undefined): void {
    if (status === 503) this.ctx.stats.unavailable++;
    const res = this.res;
    if (res.headersSent || this.#clientGone) {
      res.destroy();
      this.#finish(kind);
      return;
    }
    const body = errorBody(code, message);
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (status === 503) headers['retry-after'] = '1';
    res.writeHead(status, headers);
    res.end(body);
    this.#status = status;
    this.#finish(kind);
  }

  #onClientGone(): void {
    if (this.#clientGone) return;
    this.#clientGone = true;
    this.ctx.stats.errors.clientAborted++;
    this.#abort?.(new Error('client went away'));
    // An exchange waiting for the interceptor, a backend or its upstream finishes when that callback fires.
    if (!this.#pending) this.#finish('clientAborted');
  }

  #finish(error?: HttpErrorKind): void {
    if (this.#finished) return;
    this.#finished = true;
    const stats = this.ctx.stats;
    stats.inFlight--;
    stats.responses++;
    if (this.#gateCounted) this.ctx.gate.ended();
    if (this.conn.active === this) this.conn.next();
    const after = this.ctx.opts.afterResponse;
    if (after !== undefined && this.#rreq !== undefined) {
      try {
        after(this.#rreq, {
          statusCode: this.#clientGone ? 0 : this.#status,
          backendStatus: this.#backendStatus,
          backendId: this.#backend?.id,
          epoch: this.#backend === undefined ? undefined : this.#sentEpoch,
          error: error ?? (this.#clientGone ? 'clientAborted' : undefined),
          durationMs: performance.now() - this.#startedAt,
        });
      } catch {
        // afterResponse must not break the data plane.
      }
    }
  }
}

/** Handles one HTTP request: the server's `request` listener. */
export function handleHttpRequest(ctx: HttpProxyContext, req: IncomingMessage, res: ServerResponse): void {
  ctx.stats.requests++;
  ctx.stats.inFlight++;
  const conn = connectionQueue<Exchange>(req.socket);
  conn.add(new Exchange(ctx, req, res, conn));
}
