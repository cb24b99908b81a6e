import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { failoverHistory } from '../control/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { ApiControl } from './api-control.js';
import { parseOr400 } from './parse-request.js';

/** Body of `POST /v1/services/:name/pause` and `/resume`. */
export const pauseBody = z.strictObject({
  /** Why, recorded in the decision. */
  reason: z.string().min(1).max(500).default('requested through the API'),
});

/** Query of `GET /v1/services/:name/history`. */
export const historyQuery = z.strictObject({
  /** At most this many, newest. @default 100 */
  limit: z.coerce.number().int().min(1).max(5000).default(100),
});

/**
 * The operator verbs patronictl users expect, beyond failover/switchover/restart: pause and resume
 * (maintenance mode) and the failover history of a service. Authenticated like every other route (the
 * request guard runs first).
 */
export function registerOperatorRoutes(app: FastifyInstance, control: ApiControl): void {
  const known = async (name: string): Promise<void> => {
    if (!(await control.services()).some((s) => s.name === name))
      throw new UnderstudyError(ErrorCode.NotFound, `no service named '${name}'`);
  };
  app.post<{ Params: { name: string } }>('/v1/services/:name/pause', async (req) => {
    const body = parseOr400(pauseBody, req.body, 'body');
    return { decision: await control.pause(req.params.name, body.reason) };
  });
  app.post<{ Params: { name: string } }>('/v1/services/:name/resume', async (req) => {
    const body = parseOr400(pauseBody, req.body, 'body');
    return { decision: await control.resume(req.params.name, body.reason) };
  });
  app.get<{ Params: { name: string } }>('/v1/services/:name/history', async (req) => {
    const q = parseOr400(historyQuery, req.query, 'query');
    await known(req.params.name);
    const decisions = await control.decisions.list({ service: req.params.name });
    return { history: failoverHistory(decisions).slice(-q.limit) };
  });
}

/** The OpenAPI paths of {@link registerOperatorRoutes} (merged into `/v1/openapi.json`). */
export function operatorPaths(helpers: {
  idParam: (name: string) => unknown;
  ok: (description: string) => Record<string, unknown>;
  body: (schema: z.ZodType) => unknown;
  queryParams: (schema: z.ZodObject) => unknown[];
  notFound: unknown;
}): Record<string, unknown> {
  const { idParam, ok, body, queryParams, notFound } = helpers;
  return {
    '/v1/services/{name}/pause': {
      post: {
        summary:
          'Maintenance mode: no automatic failover or scaling of the service (what would be done is recorded as skipped); stored',
        parameters: [idParam('name')],
        requestBody: body(pauseBody),
        responses: { ...ok('The decision'), '404': notFound },
      },
    },
    '/v1/services/{name}/resume': {
      post: {
        summary: 'End maintenance mode; a failover skipped while paused is carried out if still due',
        parameters: [idParam('name')],
        requestBody: body(pauseBody),
        responses: { ...ok('The decision'), '404': notFound },
      },
    },
    '/v1/services/{name}/history': {
      get: {
        summary: 'Failovers and switchovers of the service: epochs, instances, times, durations, reasons',
        parameters: [idParam('name'), ...queryParams(historyQuery)],
        responses: { ...ok('History, oldest first'), '404': notFound },
      },
    },
  };
}
