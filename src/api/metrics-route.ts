import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../telemetry/index.js';
import { OPTIONALLY_PUBLIC_ROUTES } from './request-guard.js';

/**
 * Registers `GET /metrics`: the Prometheus text exposition of `telemetry`, sampled at the request.
 * It needs the bearer token unless the spec sets `api.metricsPublic` (decided by the request guard).
 */
export function registerMetricsRoute(app: FastifyInstance, telemetry: Telemetry): void {
  app.get(OPTIONALLY_PUBLIC_ROUTES.metrics, async (_req, reply) => {
    const { contentType, body } = await telemetry.exposition();
    return reply.type(contentType).send(body);
  });
}
