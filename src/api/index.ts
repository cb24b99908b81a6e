export { ApiServer, API_ENDPOINT_FILE } from './api-server.js';
export type { ApiEndpoint, ApiRoute, ApiServerOptions } from './api-server.js';
export type { ApiControl } from './api-control.js';
export { ApiClient } from './api-client.js';
export { buildOpenApi } from './openapi.js';
export { OPTIONALLY_PUBLIC_ROUTES, PUBLIC_ROUTES } from './request-guard.js';
export { ensureToken, readToken, tokenPath } from './token.js';
export type { ApiErrorBody } from './schemas.js';
