/** The OpenAPI paths of the dashboard's routes (ui-routes.ts), merged into the API's document. */
export function uiOpenApiPaths(): Record<string, unknown> {
  const json = (description: string): Record<string, unknown> => ({
    '200': { description, content: { 'application/json': { schema: { type: 'object' } } } },
    '401': { description: 'Missing or wrong bearer token (or dashboard session)' },
    '404': { description: 'No such service' },
  });
  const html = (description: string): Record<string, unknown> => ({
    '200': { description, content: { 'text/html': { schema: { type: 'string' } } } },
  });
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  return {
    '/ui/': {
      get: {
        summary: 'The dashboard (static page; its data needs a session)',
        security: [],
        responses: html('Page'),
      },
    },
    '/ui/assets/{file}': {
      get: {
        summary: "The dashboard's scripts and styles (no data)",
        security: [],
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
        responses: html('Asset'),
      },
    },
    '/ui/login': {
      get: {
        summary:
          'Exchanges a one-time login code for a session cookie (HttpOnly, SameSite=Strict); redirects to /ui/',
        security: [],
        parameters: [{ name: 'code', in: 'query', required: true, schema: { type: 'string' } }],
        responses: {
          '303': { description: 'Logged in' },
          '401': { description: 'Code expired, used or unknown' },
        },
      },
    },
    '/v1/ui/login-codes': {
      post: {
        summary: 'A one-time dashboard login code (bearer token only; single use, 60 s)',
        responses: json('{code, expiresAt, path}'),
      },
    },
    '/v1/services/{name}/samples': {
      get: {
        summary:
          "A service's recent samples (one a second, the last 15 minutes): load, capacity, forecast, counts, lags",
        parameters: [
          name,
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0 } },
        ],
        responses: json('{service, intervalMs, samples}'),
      },
    },
    '/v1/services/{name}/forecast': {
      get: {
        summary:
          'Forecast accuracy: MASE against the last-value forecast and interval coverage, last hour and day',
        parameters: [name],
        responses: json('{service, forecasting, hour, day, pending} or {forecasting: false, note}'),
      },
    },
  };
}
