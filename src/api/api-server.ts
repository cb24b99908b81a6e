import { timingSafeEqual } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { parseListen } from '../config/index.js';
import type { ControlPlane } from '../control/index.js';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import { buildOpenApi } from './openapi.js';
import {
  eventsQuery,
  failoverBody,
  restartBody,
  shutdownBody,
  switchoverBody,
  type ApiErrorBody,
} from './schemas.js';
import { ensureToken } from './token.js';

/** Options of the API server. */
export interface ApiServerOptions {
  control: ControlPlane;
  dataDir: string;
  /** `host:port`; port 0 picks a free one. @default 127.0.0.1:0 */
  listen?: string;
  /** Called on `POST /v1/shutdown` (after the reply is sent). */
  onShutdown?: (reason: string) => void;
  /** Extra status fields (runtime limits support, versions, …) for `GET /v1/status`. */
  status?: () => Record<string, unknown>;
}

/** Where a running control plane's API is, written to `<dataDir>/api.json` for the CLI. */
export interface ApiEndpoint {
  url: string;
  pid: number;
  startedAt: number;
}

export const API_ENDPOINT_FILE = 'api.json';

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.error.message);
  }
}

function parseOr400<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message,
  }));
  throw new RequestError(400, {
    error: {
      code: ErrorCode.ApiRequest,
      message: problems.map((p) => `${p.field}: ${p.message}`).join('; '),
      problems,
    },
  });
}

/**
 * The control plane's HTTP API (fastify) on loopback by default. Every `/v1` route needs the bearer
 * token of the data directory; `/healthz` does not. Errors share one shape: `{error:{code,message,problems}}`.
 */
export class ApiServer {
  private constructor(
    private readonly app: FastifyInstance,
    readonly endpoint: ApiEndpoint,
    private readonly dataDir: string,
  ) {}

  static async start(options: ApiServerOptions): Promise<ApiServer> {
    const token = ensureToken(options.dataDir);
    const expected = Buffer.from(`Bearer ${token}`);
    const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
    const { control } = options;
    const startedAt = Date.now();

    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!req.url.startsWith('/v1/')) return;
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        const body: ApiErrorBody = {
          error: {
            code: ErrorCode.ApiAuth,
            message: `missing or wrong bearer token (it is in ${join(options.dataDir, 'token')})`,
          },
        };
        await reply.code(401).header('www-authenticate', 'Bearer').send(body);
      }
    });

    app.setErrorHandler((err: unknown, _req, reply) => {
      if (err instanceof RequestError) return reply.code(err.status).send(err.body);
      if (isUnderstudyError(err, ErrorCode.NotFound)) {
        return reply.code(404).send({ error: { code: err.code, message: err.message } });
      }
      if (isUnderstudyError(err, ErrorCode.Failover)) {
        return reply.code(409).send({ error: { code: err.code, message: err.message } });
      }
      const e = err as { statusCode?: number; message?: string; code?: string };
      if (e.statusCode && e.statusCode < 500) {
        return reply.code(e.statusCode).send({
          error: { code: ErrorCode.ApiRequest, message: `request body: ${e.message ?? 'invalid'}` },
        });
      }
      return reply
        .code(500)
        .send({ error: { code: 'UNDERSTUDY_ERR_INTERNAL', message: e.message ?? 'internal error' } });
    });
    app.setNotFoundHandler((req, reply) =>
      reply
        .code(404)
        .send({ error: { code: ErrorCode.NotFound, message: `no route ${req.method} ${req.url}` } }),
    );

    app.get('/healthz', async () => ({ ok: true }));
    app.get('/v1/openapi.json', async () => buildOpenApi());
    app.get('/v1/status', async () => ({
      pid: process.pid,
      dataDir: options.dataDir,
      startedAt,
      uptimeMs: Date.now() - startedAt,
      eventLoopDelay: control.eventLoopDelay(),
      ...(options.status?.() ?? {}),
    }));
    app.get('/v1/services', async () => ({ services: await control.services() }));
    app.get<{ Params: { name: string } }>('/v1/services/:name', async (req) => {
      const svc = (await control.services()).find((s) => s.name === req.params.name);
      if (!svc)
        throw new RequestError(404, {
          error: { code: ErrorCode.NotFound, message: `no service named '${req.params.name}'` },
        });
      return svc;
    });
    app.post<{ Params: { name: string } }>('/v1/services/:name/failover', async (req) => {
      const body = parseOr400(failoverBody, req.body, 'body');
      return { decision: await control.forceFailover(req.params.name, body.reason) };
    });
    app.post<{ Params: { name: string } }>('/v1/services/:name/switchover', async (req) => {
      const body = parseOr400(switchoverBody, req.body, 'body');
      return { decision: await control.switchover(req.params.name, body.to) };
    });
    app.get('/v1/instances', async () => ({ instances: control.instances() }));
    app.get<{ Params: { id: string } }>('/v1/instances/:id', async (req) => {
      const inst = control.instances().find((i) => i.id === req.params.id);
      if (!inst)
        throw new RequestError(404, {
          error: { code: ErrorCode.NotFound, message: `no instance named '${req.params.id}'` },
        });
      return inst;
    });
    app.post<{ Params: { id: string } }>('/v1/instances/:id/restart', async (req) => {
      const body = parseOr400(restartBody, req.body, 'body');
      const decision = await control.restartInstance(req.params.id, body.reason);
      return { decision };
    });
    app.get('/v1/events', async (req) => {
      const q = parseOr400(eventsQuery, req.query, 'query');
      return {
        events: await control.decisions.list({
          after: q.after,
          limit: q.limit,
          ...(q.service ? { service: q.service } : {}),
        }),
      };
    });
    app.get('/v1/events/stream', (req, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      reply.raw.write(': understudy decisions\n\n');
      const unsubscribe = control.decisions.subscribe((d) =>
        reply.raw.write(`id: ${d.seq}\ndata: ${JSON.stringify(d)}\n\n`),
      );
      req.raw.on('close', unsubscribe);
    });
    app.post('/v1/shutdown', async (req, reply) => {
      const body = parseOr400(shutdownBody, req.body, 'body');
      reply.raw.on('finish', () => options.onShutdown?.(body.reason));
      return { ok: true, reason: body.reason };
    });

    const { host, port: listenPort } = parseListen(options.listen ?? '127.0.0.1:0');
    await app.listen({ host, port: listenPort });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : listenPort;
    const endpoint: ApiEndpoint = {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      pid: process.pid,
      startedAt,
    };
    // Atomic: a CLI reading it never sees half a file.
    const tmp = join(options.dataDir, `${API_ENDPOINT_FILE}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(endpoint) + '\n', { mode: 0o600 });
    renameSync(tmp, join(options.dataDir, API_ENDPOINT_FILE));
    return new ApiServer(app, endpoint, options.dataDir);
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
