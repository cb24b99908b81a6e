import type { FastifyInstance } from 'fastify';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { ApiControl } from './api-control.js';
import { buildOpenApi } from './openapi.js';
import { registerOperatorRoutes } from './operator-routes.js';
import { registerProfileRoutes } from './profile-routes.js';
import { parseOr400 } from './parse-request.js';
import { eventsQuery, failoverBody, restartBody, shutdownBody, switchoverBody } from './schemas.js';

/** What the routes need besides the control plane. */
export interface RouteContext {
  control: ApiControl;
  dataDir: string;
  startedAt: number;
  onShutdown?: (reason: string) => void;
  status?: () => Record<string, unknown>;
}

/**
 * Registers every route of the API. Authentication is not decided here: the request guard runs on
 * every request first and lets only the routes of `PUBLIC_ROUTES` through without the token.
 */
export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { control } = ctx;
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/v1/openapi.json', async () => buildOpenApi());
  app.get('/v1/status', async () => ({
    pid: process.pid,
    dataDir: ctx.dataDir,
    startedAt: ctx.startedAt,
    uptimeMs: Date.now() - ctx.startedAt,
    eventLoopDelay: control.eventLoopDelay(),
    ...(ctx.status?.() ?? {}),
  }));
  app.get('/v1/services', async () => ({ services: await control.services() }));
  app.get<{ Params: { name: string } }>('/v1/services/:name', async (req) => {
    const svc = (await control.services()).find((s) => s.name === req.params.name);
    if (!svc) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${req.params.name}'`);
    return svc;
  });
  app.post<{ Params: { name: string } }>('/v1/services/:name/failover', async (req) => {
    const body = parseOr400(failoverBody, req.body, 'body');
    return { decision: await control.forceFailover(req.params.name, body.reason, body.to) };
  });
  app.post<{ Params: { name: string } }>('/v1/services/:name/switchover', async (req) => {
    const body = parseOr400(switchoverBody, req.body, 'body');
    return { decision: await control.switchover(req.params.name, body.to) };
  });
  app.get('/v1/instances', async () => ({ instances: control.instances() }));
  app.get<{ Params: { id: string } }>('/v1/instances/:id', async (req) => {
    const inst = control.instances().find((i) => i.id === req.params.id);
    if (!inst) throw new UnderstudyError(ErrorCode.NotFound, `no instance named '${req.params.id}'`);
    return inst;
  });
  app.post<{ Params: { id: string } }>('/v1/instances/:id/restart', async (req) => {
    const body = parseOr400(restartBody, req.body, 'body');
    return { decision: await control.restartInstance(req.params.id, body.reason, body.force) };
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
    // A HEAD (fastify serves one for every GET) gets the headers and nothing to wait for: node sends
    // no body for it, so the stream would otherwise hold the connection open without a byte.
    if (req.method === 'HEAD') {
      reply.raw.end();
      return;
    }
    reply.raw.write(': understudy decisions\n\n');
    const unsubscribe = control.decisions.subscribe((d) =>
      reply.raw.write(`id: ${d.seq}\ndata: ${JSON.stringify(d)}\n\n`),
    );
    req.raw.on('close', unsubscribe);
  });
  registerOperatorRoutes(app, control);
  registerProfileRoutes(app, control);
  app.post('/v1/shutdown', async (req, reply) => {
    const body = parseOr400(shutdownBody, req.body, 'body');
    reply.raw.on('finish', () => ctx.onShutdown?.(body.reason));
    return { ok: true, reason: body.reason };
  });
}
