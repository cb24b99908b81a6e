import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { Interceptor, AfterResponse } from './intercept.js';

/** One backend of a service's serving set: a primary instance's address and the epoch it serves under. */
export interface BackendTarget {
  /** Instance id; stable for the life of the instance. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /**
   * Fencing epoch the instance was promoted under. The router never sends to a backend whose epoch is
   * older than the router's current epoch ({@link Router.setEpoch}).
   * @default 0
   */
  readonly epoch?: number;
  /**
   * Relative share of new requests (HAProxy's server `weight`): 0 sends it no new requests (its
   * in-flight ones finish). Least outstanding requests stays the rule within the weights.
   * @default 1
   */
  readonly weight?: number;
  /**
   * Slow start (Envoy's slow start, HAProxy's `slowstart`): a backend that *joins* the serving set
   * ramps its weight linearly from {@link SLOW_START_MIN_FRACTION} of `weight` to all of it over this
   * window, ms; a backend that stays in the set keeps its ramp. 0 = full weight at once (failover).
   * @default 0
   */
  readonly slowStartMs?: number;
}

/** Fraction of its weight a slow-starting backend begins with (Envoy's `min_weight_percent`: 10%). */
export const SLOW_START_MIN_FRACTION = 0.1;

/** A shadow instance that receives mirrored copies of requests. */
export interface ShadowTarget {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

/** Options of {@link Router.create}. Plain data: the control plane resolves the service spec into this. */
export interface RouterOptions {
  /** Service name (used in stats, the 503 body and the mirror Host suffix). */
  service: string;
  /** `http` (HTTP/1.1 reverse proxy) or `tcp` (byte piping for non-HTTP services). @default 'http' */
  mode?: 'http' | 'tcp';
  /** Public address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Public port; 0 picks a free one (read it back from {@link Router.address}). @default 0 */
  port?: number;
  /** Initial serving set. @default [] */
  backends?: readonly BackendTarget[];
  /** Initial fencing epoch. @default 0 */
  epoch?: number;
  /** How long a request waits for a usable backend (a switch in progress) before 503, ms. @default 2000 */
  waitForBackendMs?: number;
  /** Bound of requests (or TCP connections) waiting for a backend; more are answered 503 at once. @default 10000 */
  maxWaiting?: number;
  /** How long a backend that refused a connection is skipped, ms. @default 250 */
  ejectMs?: number;
  /** Retry an idempotent request once when its backend failed before answering. @default true */
  retryIdempotent?: boolean;
  /** Treat PUT and DELETE as idempotent for the retry (GET, HEAD, OPTIONS always are). @default true */
  retryPutDelete?: boolean;
  /**
   * Request bodies up to this size are held in memory so the request can be retried, intercepted or
   * mirrored; larger bodies stream through and are never retried. @default 1048576 (1 MiB)
   */
  maxBufferedBodyBytes?: number;
  /** Methods counted as mutating (paused by {@link Router.pause}, offered to the interceptor). @default ['POST','PUT','PATCH','DELETE'] */
  mutatingMethods?: readonly string[];
  /** Bound of mutating requests held while paused; more are answered 503. @default 10000 */
  maxPausedRequests?: number;
  /** A mutating request held longer than this by a pause is answered 503, ms. @default 10000 */
  maxPauseMs?: number;
  /** An old backend's connections are destroyed this long after it left the serving set, ms. @default 30000 */
  drainTimeoutMs?: number;
  /** Keep-alive connections per backend. @default 128 */
  connectionsPerBackend?: number;
  /** Backend connect timeout, ms. @default 1000 */
  connectTimeoutMs?: number;
  /** Time to the backend's response headers, ms (0 = none). @default 300000 */
  headersTimeoutMs?: number;
  /** Idle time between response body chunks, ms (0 = none). @default 300000 */
  bodyTimeoutMs?: number;
  /** Idle keep-alive client connections are closed after this, ms. @default 5000 */
  clientKeepAliveMs?: number;
  /**
   * A client's request head must be complete within this long of its first byte, ms; otherwise the
   * client is answered 408 and the connection closed. Counted from the first byte, not reset by each
   * byte (a client trickling a byte at a time cannot hold a connection open); like HAProxy's
   * `timeout http-request`. Also the node:http path's `headersTimeout`. @default 10000
   */
  requestHeadTimeoutMs?: number;
  /**
   * A request (head and body) handled on the node:http path must be received within this long, ms
   * (node:http's `requestTimeout`; 408 and close otherwise). At least {@link requestHeadTimeoutMs}.
   * @default 300000
   */
  requestTimeoutMs?: number;
  /**
   * Client connections open at once on the public listener; a connection beyond this is closed at
   * once, before any byte is read. @default 10000
   */
  maxConnections?: number;
  /** Replication hook: sees mutating requests with their buffered body before they are forwarded. */
  interceptor?: Interceptor;
  /** Called when an intercepted request is finished (answered, failed or refused). */
  afterResponse?: AfterResponse;
  /** Path filter of the interceptor: only paths starting with one of these are offered. @default ['/'] */
  interceptPathPrefixes?: readonly string[];
  /** Initial shadows that receive mirrored requests. @default [] */
  shadows?: readonly ShadowTarget[];
  /** Fraction of requests mirrored to every shadow, 0..1. @default 1 */
  mirrorFraction?: number;
  /** Bound of mirrored requests in flight across shadows; more are dropped and counted. @default 64 */
  maxMirrorInFlight?: number;
  /** A mirrored request slower than this is abandoned, ms. @default 5000 */
  mirrorTimeoutMs?: number;
  /** Random source for sampling (tests pass a seeded one). @default Math.random */
  random?: () => number;
  /**
   * HTTP mode: proxy plain GET/HEAD requests on raw sockets (about 3x less CPU per request) and hand
   * every other request's connection to the full node:http path. @default true
   */
  fastPath?: boolean;
}

/** {@link RouterOptions} with defaults applied. */
export interface ResolvedRouterOptions {
  service: string;
  mode: 'http' | 'tcp';
  host: string;
  port: number;
  backends: readonly BackendTarget[];
  epoch: number;
  waitForBackendMs: number;
  maxWaiting: number;
  ejectMs: number;
  retryIdempotent: boolean;
  retryPutDelete: boolean;
  maxBufferedBodyBytes: number;
  mutatingMethods: ReadonlySet<string>;
  maxPausedRequests: number;
  maxPauseMs: number;
  drainTimeoutMs: number;
  connectionsPerBackend: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  clientKeepAliveMs: number;
  requestHeadTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
  interceptor: Interceptor | undefined;
  afterResponse: AfterResponse | undefined;
  interceptPathPrefixes: readonly string[];
  shadows: readonly ShadowTarget[];
  mirrorFraction: number;
  maxMirrorInFlight: number;
  mirrorTimeoutMs: number;
  random: () => number;
  fastPath: boolean;
}

function bad(field: string, why: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.RouterConfig, `router option ${field} ${why}`, { details: { field } });
}

function nonNegative(field: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isFinite(x) || x < 0) throw bad(field, `must be a finite number >= 0, got ${String(v)}`);
  return x;
}

function positive(field: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isFinite(x) || x <= 0) throw bad(field, `must be a finite number > 0, got ${String(v)}`);
  return x;
}

/** Checks a backend or shadow address. Thrown when the id is empty or the port is out of range. */
export function checkTarget(
  t: { id: string; host: string; port: number; weight?: number; slowStartMs?: number },
  field: string,
): void {
  if (typeof t.id !== 'string' || t.id === '') throw bad(field, 'needs a non-empty id');
  if (typeof t.host !== 'string' || t.host === '') throw bad(`${field}.host`, 'must be a non-empty host');
  if (!Number.isInteger(t.port) || t.port <= 0 || t.port > 65535)
    throw bad(`${field}.port`, `must be 1..65535, got ${String(t.port)}`);
  if (t.weight !== undefined && !(Number.isFinite(t.weight) && t.weight >= 0 && t.weight <= 256))
    throw bad(`${field}.weight`, `must be within 0..256, got ${String(t.weight)}`);
  if (t.slowStartMs !== undefined && !(Number.isFinite(t.slowStartMs) && t.slowStartMs >= 0))
    throw bad(`${field}.slowStartMs`, `must be a duration >= 0 ms, got ${String(t.slowStartMs)}`);
}

/** Applies defaults once. Thrown (`UNDERSTUDY_ERR_ROUTER_CONFIG`) when an option is out of range. */
export function resolveRouterOptions(o: RouterOptions): ResolvedRouterOptions {
  if (typeof o.service !== 'string' || o.service === '') throw bad('service', 'must be a non-empty name');
  const mode = o.mode ?? 'http';
  if (mode !== 'http' && mode !== 'tcp') throw bad('mode', `must be 'http' or 'tcp', got ${String(mode)}`);
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw bad('port', `must be 0..65535, got ${String(port)}`);
  const backends = o.backends ?? [];
  backends.forEach((b, i) => checkTarget(b, `backends[${i}]`));
  const shadows = o.shadows ?? [];
  shadows.forEach((s, i) => checkTarget(s, `shadows[${i}]`));
  const mirrorFraction = o.mirrorFraction ?? 1;
  if (!(mirrorFraction >= 0 && mirrorFraction <= 1))
    throw bad('mirrorFraction', `must be within 0..1, got ${String(mirrorFraction)}`);
  const connectionsPerBackend = o.connectionsPerBackend ?? 128;
  if (!Number.isInteger(connectionsPerBackend) || connectionsPerBackend < 1)
    throw bad('connectionsPerBackend', 'must be an integer >= 1');
  const requestHeadTimeoutMs = positive('requestHeadTimeoutMs', o.requestHeadTimeoutMs, 10_000);
  const requestTimeoutMs = positive('requestTimeoutMs', o.requestTimeoutMs, 300_000);
  if (requestTimeoutMs < requestHeadTimeoutMs)
    throw bad('requestTimeoutMs', `must be >= requestHeadTimeoutMs (${requestHeadTimeoutMs})`);
  const maxConnections = o.maxConnections ?? 10_000;
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw bad('maxConnections', `must be an integer >= 1, got ${String(o.maxConnections)}`);
  return {
    service: o.service,
    mode,
    host: o.host ?? '127.0.0.1',
    port,
    backends,
    epoch: nonNegative('epoch', o.epoch, 0),
    waitForBackendMs: nonNegative('waitForBackendMs', o.waitForBackendMs, 2000),
    maxWaiting: nonNegative('maxWaiting', o.maxWaiting, 10_000),
    ejectMs: nonNegative('ejectMs', o.ejectMs, 250),
    retryIdempotent: o.retryIdempotent ?? true,
    retryPutDelete: o.retryPutDelete ?? true,
    maxBufferedBodyBytes: nonNegative('maxBufferedBodyBytes', o.maxBufferedBodyBytes, 1 << 20),
    mutatingMethods: new Set(
      (o.mutatingMethods ?? ['POST', 'PUT', 'PATCH', 'DELETE']).map((m) => m.toUpperCase()),
    ),
    maxPausedRequests: nonNegative('maxPausedRequests', o.maxPausedRequests, 10_000),
    maxPauseMs: nonNegative('maxPauseMs', o.maxPauseMs, 10_000),
    drainTimeoutMs: nonNegative('drainTimeoutMs', o.drainTimeoutMs, 30_000),
    connectionsPerBackend,
    connectTimeoutMs: nonNegative('connectTimeoutMs', o.connectTimeoutMs, 1000),
    headersTimeoutMs: nonNegative('headersTimeoutMs', o.headersTimeoutMs, 300_000),
    bodyTimeoutMs: nonNegative('bodyTimeoutMs', o.bodyTimeoutMs, 300_000),
    clientKeepAliveMs: nonNegative('clientKeepAliveMs', o.clientKeepAliveMs, 5000),
    requestHeadTimeoutMs,
    requestTimeoutMs,
    maxConnections,
    interceptor: o.interceptor,
    afterResponse: o.afterResponse,
    interceptPathPrefixes: o.interceptPathPrefixes ?? ['/'],
    shadows,
    mirrorFraction,
    maxMirrorInFlight: nonNegative('maxMirrorInFlight', o.maxMirrorInFlight, 64),
    mirrorTimeoutMs: nonNegative('mirrorTimeoutMs', o.mirrorTimeoutMs, 5000),
    random: o.random ?? Math.random,
    fastPath: o.fastPath ?? true,
  };
}
