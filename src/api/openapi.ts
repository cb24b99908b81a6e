import { z } from 'zod';
import { operatorPaths } from './operator-routes.js';
import { profilePaths } from './profile-routes.js';
import { uiOpenApiPaths } from './ui-openapi.js';
import { eventsQuery, failoverBody, restartBody, shutdownBody, switchoverBody } from './schemas.js';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable error code, see docs/errors.md' },
        message: { type: 'string' },
        problems: {
          type: 'array',
          items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
        },
        leader: {
          type: 'string',
          description:
            "With UNDERSTUDY_ERR_NOT_LEADER (503, a standby control replica): the leader's API URL, when known",
        },
      },
    },
  },
} as const;

const errors = {
  '400': {
    description: 'Invalid request',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '401': {
    description: 'Missing or wrong bearer token',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '421': {
    description: "The Host header does not name this API's address (UNDERSTUDY_ERR_API_HOST)",
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
};

function ok(description: string): Record<string, unknown> {
  return {
    '200': { description, content: { 'application/json': { schema: { type: 'object' } } } },
    ...errors,
  };
}

function queryParams(schema: z.ZodObject): unknown[] {
  const json = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, unknown> };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));
}

function body(schema: z.ZodType): unknown {
  return {
    required: false,
    content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input' }) } },
  };
}

/** The OpenAPI 3.1 document of the API, served at `/v1/openapi.json`. */
export function buildOpenApi(): Record<string, unknown> {
  const idParam = (name: string): unknown => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Understudy API',
      version: '1',
      description:
        "Control-plane API of Understudy. Every route but /healthz and the dashboard's /ui/ files needs `Authorization: Bearer <token>` (the dashboard's read routes and its failover POST also take its session cookie, docs/dashboard.md); the token is in the data directory (mode 0600). The Host header must name the API's own address. Error statuses per code are in docs/errors.md.",
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: errorSchema },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': {
        get: {
          summary: 'Liveness of the control process (no token needed)',
          security: [],
          responses: ok('Alive'),
        },
      },
      '/v1/status': {
        get: {
          summary: 'Control process status: pid, uptime, event-loop delay, runtime limits support',
          responses: ok('Status'),
        },
      },
      '/v1/services': {
        get: { summary: 'Services with their instances, roles and epoch', responses: ok('Services') },
      },
      '/v1/services/{name}': {
        get: {
          summary: 'One service',
          parameters: [idParam('name')],
          responses: { ...ok('Service'), '404': errors['400'] },
        },
      },
      '/v1/services/{name}/failover': {
        post: {
          summary:
            'Forced failover: promote the best echo (or `to` a chosen healthy one), fence the primary (recorded as a decision)',
          parameters: [idParam('name')],
          requestBody: body(failoverBody),
          responses: { ...ok('The decision'), '409': errors['400'] },
        },
      },
      '/v1/services/{name}/switchover': {
        post: {
          summary: 'Planned switchover: pause mutations, wait for the echo, switch, resume',
          parameters: [idParam('name')],
          requestBody: body(switchoverBody),
          responses: { ...ok('The decision'), '409': errors['400'] },
        },
      },
      '/v1/instances': {
        get: {
          summary: 'All instances: pid, ports, role, phase, state directory, health',
          responses: ok('Instances'),
        },
      },
      '/v1/instances/{id}': {
        get: {
          summary: 'One instance',
          parameters: [idParam('id')],
          responses: { ...ok('Instance'), '404': errors['400'] },
        },
      },
      '/v1/instances/{id}/restart': {
        post: {
          summary:
            'Restart one instance (recorded as a decision); a primary that serves alone only with force: true (409 UNDERSTUDY_ERR_UNSAFE otherwise)',
          parameters: [idParam('id')],
          requestBody: body(restartBody),
          responses: ok('The decision'),
        },
      },
      '/v1/events': {
        get: {
          summary: 'Decisions, oldest first',
          parameters: queryParams(eventsQuery),
          responses: ok('Decisions'),
        },
      },
      '/v1/events/stream': {
        get: {
          summary: 'Decisions as server-sent events, live',
          responses: { '200': { description: 'text/event-stream' } },
        },
      },
      '/v1/shutdown': {
        post: {
          summary: 'Stop every instance and the control process',
          requestBody: body(shutdownBody),
          responses: ok('Shutting down'),
        },
      },
      ...operatorPaths({ idParam, ok, body, queryParams, notFound: errors['400'] }),
      ...profilePaths({ idParam, ok, notFound: errors['400'] }),
      ...uiOpenApiPaths(),
      '/v1/openapi.json': { get: { summary: 'This document', responses: ok('OpenAPI document') } },
      '/metrics': {
        get: {
          summary:
            'Prometheus metrics (text exposition, docs/metrics.md); public only with api.metricsPublic: true',
          responses: {
            '200': {
              description: 'Every metric, sampled at the request',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...errors,
          },
        },
      },
    },
  };
}
