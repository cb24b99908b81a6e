import type { IncomingHttpHeaders } from 'node:http';

/**
 * A mutating request offered to the replication layer before it is forwarded.
 * The router owns the object; treat it as read-only.
 */
export interface RouterRequest {
  /** Sequence number of the request within this router (1, 2, …), unique per router. */
  readonly id: number;
  readonly service: string;
  readonly method: string;
  /**
   * Path with query string, normalised to origin-form (request-target.ts): what the backend receives,
   * so classify on this, never on the raw target.
   */
  readonly path: string;
  /**
   * The client's request headers (lower-case names, before hop-by-hop stripping) less `x-understudy-*`
   * and those the client named in `Connection` (the backend does not receive them); `host` is the
   * authority of an absolute-form target when the client sent one.
   */
  readonly headers: IncomingHttpHeaders;
  /**
   * The whole request body, held in memory. Empty for a request without a body. `null` when the
   * body is larger than `maxBufferedBodyBytes`: it then streams through and cannot be replicated
   * from here (the interceptor decides: forward anyway, or answer with `respond`).
   */
  readonly body: Buffer | null;
  readonly remoteAddress: string;
  /** `performance.now()` when the router received the request. */
  readonly receivedAt: number;
}

/** What the primary answered, offered to {@link InterceptDecision.holdResponse} before the client sees it. */
export interface RouterResponseInfo {
  readonly statusCode: number;
  /** The backend (primary) that answered. */
  readonly backendId: string;
  /** Its epoch when the request was sent to it (what {@link InterceptDecision.epochHeader} carried). */
  readonly epoch: number;
}

/** How a held response continues. */
export type HoldOutcome =
  /** Send the primary's response to the client (the echo has applied the mutation). */
  | { readonly release: true }
  /** Replace the primary's response (e.g. strict write-through and the echo failed: 503). */
  | { readonly release: false; readonly status: number; readonly code: string; readonly message: string };

/** The interceptor's answer for one request. Every field is optional; `{}` forwards unchanged. */
export interface InterceptDecision {
  /** Answer the client directly and do not forward (e.g. 413 for a body too large to replicate). */
  readonly respond?: {
    readonly status: number;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string | Buffer;
  };
  /** Extra request headers sent to the primary (e.g. a replication sequence number). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Name of a request header (lower-case, e.g. `x-understudy-epoch`; not also in `headers`) the router
   * sets on every attempt to the epoch of the backend that attempt goes to: a request held across a
   * switch, or retried on the promoted primary, carries the epoch of the primary it reaches, never the
   * one current when the interceptor ran. Shadow copies carry the router's epoch at forwarding time.
   */
  readonly epochHeader?: string;
  /**
   * Write-through: called when the primary's response headers arrive, before anything reaches the
   * client. The response (headers and body) is held until the promise settles; a rejection counts as
   * `{release: false, status: 503, …}`. The primary's response body is buffered meanwhile.
   */
  readonly holdResponse?: (info: RouterResponseInfo) => Promise<HoldOutcome>;
  /** Force (`true`) or suppress (`false`) mirroring of this request to shadows, overriding sampling. */
  readonly mirror?: boolean;
}

/**
 * Replication hook. Called for every request whose method is mutating (itself, or through a
 * method-override header) and whose normalised path may be under one of `interceptPathPrefixes` (matched
 * conservatively, see `pathMayMatch`), after any pause, with the body buffered. The request is forwarded only
 * when the returned promise resolves, so an interceptor can impose an order (total, or per key) on
 * mutations: resolve when it is this request's turn, and release the next one from `afterResponse`.
 * A rejection answers the client 503 with the rejection's `code`/`message` when it is an
 * UnderstudyError. Return `undefined` (synchronously) to forward unchanged at no cost.
 */
export type Interceptor = (
  req: RouterRequest,
) => Promise<InterceptDecision | undefined> | InterceptDecision | undefined;

/** Outcome of an intercepted request, reported once. */
export interface RouterOutcome {
  /** Status the client received; 0 when the client connection was destroyed mid-response. */
  readonly statusCode: number;
  /** Status the primary answered (before any hold replaced it); 0 when no backend answered. */
  readonly backendStatus: number;
  readonly backendId: string | undefined;
  /** The epoch of that backend when the last attempt was sent to it; undefined when never sent. */
  readonly epoch: number | undefined;
  /** Forwarding error kind, when the request failed. */
  readonly error: string | undefined;
  readonly durationMs: number;
}

/** Called once per intercepted request when it is finished. Must not throw; errors are swallowed. */
export type AfterResponse = (req: RouterRequest, outcome: RouterOutcome) => void;
