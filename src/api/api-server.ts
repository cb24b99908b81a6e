import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { parseListen } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { Telemetry } from '../telemetry/index.js';
import type { ApiControl } from './api-control.js';
import { clientErrorReply, sendError } from './error-reply.js';
import { registerMetricsRoute } from './metrics-route.js';
import { RequestGuard } from './request-guard.js';
import { registerRoutes } from './routes.js';
import { ensureToken } from './token.js';
import { registerUiRoutes } from './ui-routes.js';
import { UiSessions, type UiSessionOptions } from './ui-session.js';

/** Options of the API server. */
export interface ApiServerOptions {
  /** The control plane the routes act on (a `ControlPlane`). */
  control: ApiControl;
  dataDir: string;
  /** `host:port`; port 0 picks a free one. @default 127.0.0.1:0 */
  listen?: string;
  /** Called on `POST /v1/shutdown` (after the reply is sent). */
  onShutdown?: (reason: string) => void;
  /**
   * A whole request (head and body) must arrive within this long of its first byte, or the client is
   * answered 408 and closed. @default 10000
   */
  requestTimeoutMs?: number;
  /** Extra status fields (runtime limits support, versions, …) for `GET /v1/status`. */
  status?: () => Record<string, unknown>;
  /** The metrics served at `GET /metrics` (a `ControlPlane`'s `telemetry`). @default an empty registry */
  telemetry?: Telemetry;
  /** Serve `GET /metrics` without the bearer token (the spec's `api.metricsPublic`). @default false */
  metricsPublic?: boolean;
  /** The dashboard: login lifetimes, and where its built files are (@default dist/web). */
  ui?: UiSessionOptions & { webDir?: string };
}

/** Where a running control plane's API is, written to `<dataDir>/api.json` for the CLI. */
export interface ApiEndpoint {
  url: string;
  pid: number;
  startedAt: number;
}

/** One route the API serves: its method and its pattern as registered (`/v1/services/:name`). */
export interface ApiRoute {
  method: string;
  url: string;
}

export const API_ENDPOINT_FILE = 'api.json';

/** Largest request body, bytes; checked before the body is parsed. */
const BODY_LIMIT = 64 * 1024;
/** Default deadline for receiving a whole request (headers and body), ms; a slow sender is answered 408. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Connections the API accepts at once (event streams included); more are refused. */
const MAX_CONNECTIONS = 256;

/**
 * Writes `api.json` atomically (a CLI reading it never sees half a file). A stale temporary file is
 * removed first, so the new one is created with mode 0600 rather than inheriting the old one's.
 */
function writeEndpointFile(dataDir: string, endpoint: ApiEndpoint): void {
  const tmp = join(dataDir, `${API_ENDPOINT_FILE}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify(endpoint) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, join(dataDir, API_ENDPOINT_FILE));
}

/**
 * The control plane's HTTP API (fastify) on loopback by default. Every route needs the bearer token of
 * the data directory except those in `PUBLIC_ROUTES` (`/healthz`; `/metrics` too with `metricsPublic`),
 * decided on the route fastify matched; the `Host` header must name this listener. Errors share one shape:
 * `{error:{code,message,problems}}`, with the HTTP status of the code (docs/errors.md).
 */
export class ApiServer {
  private constructor(
    private readonly app: FastifyInstance,
    readonly endpoint: ApiEndpoint,
    private readonly dataDir: string,
    /** Every route registered, as fastify matches them (HEAD routes of GET routes included). */
    readonly routes: readonly ApiRoute[],
  ) {}

  static async start(options: ApiServerOptions): Promise<ApiServer> {
    const { webDir, ...sessionOptions } = options.ui ?? {};
    const sessions = new UiSessions(sessionOptions);
    const guard = new RequestGuard(ensureToken(options.dataDir), {
      metricsPublic: options.metricsPublic ?? false,
      session: (req) => sessions.allows(req),
    });
    const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    const app = Fastify({
      logger: false,
      bodyLimit: BODY_LIMIT,
      // node:http looks for connections past their deadline only every `connectionsCheckingInterval`
      // (30 s by default): checked every second, a slow sender is cut 10-11 s after its first byte.
      serverFactory: (handler) =>
        createServer(
          {
            requestTimeout: requestTimeoutMs,
            headersTimeout: requestTimeoutMs,
            connectionsCheckingInterval: Math.min(1000, Math.max(50, requestTimeoutMs / 4)),
          },
          handler,
        ),
      clientErrorHandler: clientErrorReply,
      // Raised before routing (bad percent-encoding, a path parameter over 100 characters).
      frameworkErrors: (err, _req, reply) => {
        const bad = new UnderstudyError(ErrorCode.ApiRequest, 'the request target is not a valid URL', {
          cause: err,
        });
        void sendError(reply, bad);
      },
    });
    const routes: ApiRoute[] = [];
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) routes.push({ method, url: r.url });
    });
    // On every request, matched or not, before the body is read and before any handler.
    app.addHook('onRequest', async (req) => guard.check(req));
    app.setErrorHandler((err, _req, reply) => sendError(reply, err));
    app.setNotFoundHandler((req, reply) =>
      sendError(reply, new UnderstudyError(ErrorCode.NotFound, `no route ${req.method} ${req.url}`)),
    );
    const startedAt = Date.now();
    registerRoutes(app, {
      control: options.control,
      dataDir: options.dataDir,
      startedAt,
      ...(options.onShutdown ? { onShutdown: options.onShutdown } : {}),
      ...(options.status ? { status: options.status } : {}),
    });
    registerMetricsRoute(app, options.telemetry ?? new Telemetry());
    registerUiRoutes(app, { control: options.control, sessions, ...(webDir ? { webDir } : {}) });

    const { host, port: listenPort } = parseListen(options.listen ?? '127.0.0.1:0');
    app.server.maxConnections = MAX_CONNECTIONS;
    try {
      await app.listen({ host, port: listenPort });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : listenPort;
      guard.listeningOn(host, port);
      const endpoint: ApiEndpoint = {
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
        pid: process.pid,
        startedAt,
      };
      writeEndpointFile(options.dataDir, endpoint);
      return new ApiServer(app, endpoint, options.dataDir, routes);
    } catch (err) {
      await app.close();
      throw err;
    }
  }

  #closed = false;

  /** Stops listening and removes `api.json`. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    rmSync(join(this.dataDir, API_ENDPOINT_FILE), { force: true });
    await this.app.close();
  }
}
