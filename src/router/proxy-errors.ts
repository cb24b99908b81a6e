// What both router paths (the raw fast path and the node:http path) count and answer when a request
// fails: the counters, the JSON error body, and the one list of connect failures.
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../errors/index.js';

/** Why a request failed, as counted in {@link HttpStats.errors}. */
export type HttpErrorKind =
  'connect' | 'reset' | 'timeout' | 'midResponse' | 'clientAborted' | 'noBackend' | 'paused' | 'intercept';

/** HTTP counters, as returned by {@link Router.stats}. */
export interface HttpStats {
  requests: number;
  responses: number;
  inFlight: number;
  /** Requests re-sent after their backend failed once it may have received them (idempotent only). */
  retries: number;
  /** Requests re-sent after a connection was refused (never reached the backend; any method). */
  redispatched: number;
  /** Requests answered 503 by the router. */
  unavailable: number;
  /** Requests answered 400 by the router: a malformed or ambiguous target, or not exactly one Host. */
  badRequests: number;
  intercepted: number;
  /** Requests proxied on the raw-socket fast path (plain GET/HEAD). */
  fastPath: number;
  /** Client connections handed from the fast path to the full node:http path. */
  handedOff: number;
  errors: Record<HttpErrorKind, number>;
}

/**
 * Error codes of a backend connection that failed before any byte of the request could reach the
 * backend: such a request may be sent again to another backend, whatever its method.
 */
export const CONNECT_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Why a forwarded request failed, from the error undici or the socket raised. */
export function classify(err: unknown): HttpErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'reset';
  if (CONNECT_ERRORS.has(code)) return 'connect';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return 'reset';
}

/** The JSON body of a router-made error response. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Fresh zeroed HTTP counters. */
export function newHttpStats(): HttpStats {
  return {
    requests: 0,
    responses: 0,
    inFlight: 0,
    retries: 0,
    redispatched: 0,
    unavailable: 0,
    badRequests: 0,
    intercepted: 0,
    fastPath: 0,
    handedOff: 0,
    errors: {
      connect: 0,
      reset: 0,
      timeout: 0,
      midResponse: 0,
      clientAborted: 0,
      noBackend: 0,
      paused: 0,
      intercept: 0,
    },
  };
}

/**
 * Answers a CONNECT request (the server's `connect` listener): the router is a reverse proxy, not a
 * tunnel, so authority-form targets are refused with 400 and the connection closed; nothing is forwarded.
 */
export function refuseConnect(stats: HttpStats, socket: Duplex): void {
  stats.requests++;
  stats.responses++;
  stats.badRequests++;
  socket.on('error', () => undefined);
  const body = errorBody(ErrorCode.RouterRequest, 'CONNECT is not supported: this is a reverse proxy');
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
