import type { FastifyInstance } from 'fastify';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { ApiControl } from './api-control.js';

/**
 * `GET /v1/services/:name/profile`: the service's profile (seed 001) — expected CPU, memory, disk and
 * network use per serving instance as p50/p95/max per hour of day, the dependencies observed, and how
 * the next echo and shadow would be sized now. Authenticated like every other route (the request guard
 * runs first).
 */
export function registerProfileRoutes(app: FastifyInstance, control: ApiControl): void {
  app.get<{ Params: { name: string } }>('/v1/services/:name/profile', async (req) => {
    const profile = await control.profile?.(req.params.name);
    if (!profile) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${req.params.name}'`);
    return profile;
  });
}

/** The OpenAPI paths of {@link registerProfileRoutes} (merged into `/v1/openapi.json`). */
export function profilePaths(helpers: {
  idParam: (name: string) => unknown;
  ok: (description: string) => Record<string, unknown>;
  notFound: unknown;
}): Record<string, unknown> {
  const { idParam, ok, notFound } = helpers;
  return {
    '/v1/services/{name}/profile': {
      get: {
        summary:
          "The service's profile: CPU, memory, disk and network use of one serving instance as p50/p95/max per hour of day (UTC), the TCP ports, libraries and files it was seen to use, and whether new echoes and shadows are sized by it or by the spec's fixed fractions",
        parameters: [idParam('name')],
        responses: {
          ...ok('{service, version, minSamples, now: {hour, echo, shadow}, spec, hours, dependencies}'),
          '404': notFound,
        },
      },
    },
  };
}
