import { createHash, timingSafeEqual } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/**
 * The only routes served without the bearer token, by their route pattern as registered (not by the
 * request's URL). Every other route, and every request that matched no route, needs the token.
 * A deliberate public route (a dashboard) is added here and nowhere else; the one exception is
 * {@link OPTIONALLY_PUBLIC_ROUTES}, public only when the spec says so.
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set([
  '/healthz',
  // The dashboard's static files and its login-code exchange: no data in them (ui-routes.ts).
  '/ui/',
  '/ui/assets/:file',
  '/ui/login',
]);

/** Routes the spec may make public: `/metrics` with `api.metricsPublic: true` (off by default). */
export const OPTIONALLY_PUBLIC_ROUTES = { metrics: '/metrics' } as const;

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]']);

function hostWithPort(host: string, port: number): string[] {
  const h = host.includes(':') ? `[${host}]` : host;
  // `Host: localhost` means port 80: it names this listener only when it listens on 80.
  return port === 80 ? [`${h}:80`, h] : [`${h}:${port}`];
}

/**
 * The `Host` header values that name a listener on `host:port`: the loopback names, the configured
 * host, and for a wildcard listen the machine's own interface addresses and host name. Lower case.
 */
export function allowedHosts(host: string, port: number): ReadonlySet<string> {
  const names = new Set(['127.0.0.1', 'localhost', '::1', host.toLowerCase()]);
  if (WILDCARD_HOSTS.has(host)) {
    names.add(hostname().toLowerCase());
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) names.add(a.address.toLowerCase());
    }
  }
  return new Set([...names].flatMap((n) => hostWithPort(n, port)));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Checks every request before any handler runs, after fastify matched the route: the request target
 * must be origin-form (a path), the `Host` header must name this listener (a DNS-rebinding defence),
 * and every route outside {@link PUBLIC_ROUTES} (and `/metrics` when made public) needs
 * `Authorization: Bearer <token>`.
 */
export class RequestGuard {
  readonly #expected: Buffer;
  #hosts: ReadonlySet<string> = new Set();

  readonly #public: ReadonlySet<string>;

  readonly #session: ((req: FastifyRequest) => boolean) | undefined;

  /**
   * `metricsPublic`: serve {@link OPTIONALLY_PUBLIC_ROUTES}.metrics without the token too. `session`:
   * lets a request through without the token when it says so (the dashboard's session cookie).
   */
  constructor(
    token: string,
    options: { metricsPublic?: boolean; session?: (req: FastifyRequest) => boolean } = {},
  ) {
    this.#expected = digest(`Bearer ${token}`);
    this.#session = options.session;
    this.#public = options.metricsPublic
      ? new Set([...PUBLIC_ROUTES, OPTIONALLY_PUBLIC_ROUTES.metrics])
      : PUBLIC_ROUTES;
  }

  /** Sets the address the API listens on (known once it listens: port 0 picks one). */
  listeningOn(host: string, port: number): void {
    this.#hosts = allowedHosts(host, port);
  }

  /**
   * Thrown when the request must not reach a handler: UNDERSTUDY_ERR_API_REQUEST for a target that
   * is not a path, UNDERSTUDY_ERR_API_HOST for a foreign `Host`, UNDERSTUDY_ERR_API_AUTH without the token.
   */
  check(req: FastifyRequest): void {
    const target = req.raw.url ?? '';
    if (!target.startsWith('/') || target.includes('#')) {
      throw new UnderstudyError(
        ErrorCode.ApiRequest,
        'the request target must be a path starting with / (absolute-form, asterisk-form and fragments are refused)',
      );
    }
    const host = req.headers.host?.toLowerCase();
    if (host === undefined || !this.#hosts.has(host)) {
      throw new UnderstudyError(
        ErrorCode.ApiHost,
        `the Host header must name this API's address (127.0.0.1, localhost, [::1] or api.listen, with its port)`,
      );
    }
    // `routeOptions.url` is the pattern of the route fastify matched (undefined when none did), so
    // the decision follows what fastify will run, whatever the spelling of the URL.
    if (this.#public.has(req.routeOptions.url ?? '')) return;
    // Hashing both sides first makes the comparison constant-time whatever the lengths.
    if (!timingSafeEqual(digest(req.headers.authorization ?? ''), this.#expected) && !this.#session?.(req)) {
      throw new UnderstudyError(
        ErrorCode.ApiAuth,
        "missing or wrong bearer token (it is in the file 'token' of the control plane's data directory; the dashboard logs in with 'understudy dashboard')",
      );
    }
  }
}
