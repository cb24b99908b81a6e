import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** Options of the dashboard's login. */
export interface UiSessionOptions {
  /** How long a one-time login code can be exchanged, ms. @default 60000 */
  loginCodeTtlMs?: number;
  /** How long a dashboard session lasts after login, ms. @default 43200000 (12 h) */
  sessionTtlMs?: number;
  /** Sessions held at once; the oldest is ended beyond this. @default 32 */
  maxSessions?: number;
  /** Clock, ms. @default Date.now */
  now?: () => number;
}

/** The name of the dashboard's session cookie. */
export const SESSION_COOKIE = 'understudy_session';
/** The header the dashboard sends with every POST (a cross-site form cannot set one). */
export const UI_CSRF_HEADER = 'x-understudy-ui';

/**
 * Routes a dashboard session may read (GET, and the HEAD fastify adds), by route pattern. Everything
 * else still needs the bearer token: a session can never mint login codes, shut down, restart, …
 */
export const SESSION_READ_ROUTES: ReadonlySet<string> = new Set([
  '/v1/status',
  '/v1/services',
  '/v1/services/:name',
  '/v1/services/:name/samples',
  '/v1/services/:name/forecast',
  '/v1/services/:name/profile',
  '/v1/instances',
  '/v1/events',
  '/v1/events/stream',
]);
/** Routes a dashboard session may POST to, with the CSRF header and a same-origin `Origin`. */
export const SESSION_WRITE_ROUTES: ReadonlySet<string> = new Set(['/v1/services/:name/failover']);

const digest = (secret: string): string => createHash('sha256').update(secret).digest('hex');
const secret = (): string => randomBytes(32).toString('base64url');

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The dashboard's login without the API token in a URL: the CLI, holding the token, asks for a
 * one-time login code (single use, short-lived); the browser exchanges it for a session secret kept
 * in an HttpOnly, SameSite=Strict cookie. Only digests of codes and secrets are held, in memory: a
 * restart of the control plane ends every session.
 */
export class UiSessions {
  readonly #codeTtl: number;
  readonly #sessionTtl: number;
  readonly #max: number;
  readonly #now: () => number;
  /** digest(code) → expiry. */
  readonly #codes = new Map<string, number>();
  /** digest(session secret) → expiry, oldest first. */
  readonly #sessions = new Map<string, number>();

  constructor(options: UiSessionOptions = {}) {
    this.#codeTtl = options.loginCodeTtlMs ?? 60_000;
    this.#sessionTtl = options.sessionTtlMs ?? 12 * 3_600_000;
    this.#max = options.maxSessions ?? 32;
    this.#now = options.now ?? Date.now;
  }

  /** Session lifetime, seconds (the cookie's Max-Age). */
  get sessionTtlSeconds(): number {
    return Math.floor(this.#sessionTtl / 1000);
  }

  #sweep(now: number): void {
    for (const [k, exp] of this.#codes) if (exp <= now) this.#codes.delete(k);
    for (const [k, exp] of this.#sessions) if (exp <= now) this.#sessions.delete(k);
  }

  /** A new one-time login code and when it expires (ms). */
  issueCode(): { code: string; expiresAt: number } {
    const now = this.#now();
    this.#sweep(now);
    const code = secret();
    const expiresAt = now + this.#codeTtl;
    this.#codes.set(digest(code), expiresAt);
    // Codes are cheap to ask for (with the token): keep only the newest few.
    while (this.#codes.size > this.#max) this.#codes.delete(this.#codes.keys().next().value!);
    return { code, expiresAt };
  }

  /** Exchanges a code (once, before it expires) for a new session secret; undefined when refused. */
  redeem(code: string): string | undefined {
    const now = this.#now();
    const key = digest(code);
    const exp = this.#codes.get(key);
    this.#codes.delete(key);
    if (exp === undefined || exp <= now) return undefined;
    this.#sweep(now);
    const s = secret();
    this.#sessions.set(digest(s), now + this.#sessionTtl);
    while (this.#sessions.size > this.#max) this.#sessions.delete(this.#sessions.keys().next().value!);
    return s;
  }

  /** Whether `session` is a live session secret. */
  valid(session: string | undefined): boolean {
    if (!session) return false;
    const exp = this.#sessions.get(digest(session));
    return exp !== undefined && exp > this.#now();
  }

  /**
   * Whether the request may go through on its session cookie: a read route by GET/HEAD, or a write
   * route by POST with the {@link UI_CSRF_HEADER} header and an `Origin` naming the request's own `Host`
   * (besides SameSite=Strict, which keeps the cookie off cross-site requests).
   */
  allows(req: FastifyRequest): boolean {
    if (!this.valid(cookieValue(req.headers.cookie, SESSION_COOKIE))) return false;
    const route = req.routeOptions.url ?? '';
    if (req.method === 'GET' || req.method === 'HEAD') return SESSION_READ_ROUTES.has(route);
    if (req.method !== 'POST' || !SESSION_WRITE_ROUTES.has(route)) return false;
    const origin = req.headers.origin;
    return (
      req.headers[UI_CSRF_HEADER] === '1' && origin !== undefined && origin === `http://${req.headers.host}`
    );
  }

  /** The `Set-Cookie` value that holds a session secret. */
  cookie(session: string): string {
    return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${this.sessionTtlSeconds}`;
  }
}
