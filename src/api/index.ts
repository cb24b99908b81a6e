export { ApiServer, API_ENDPOINT_FILE } from './api-server.js';
export type { ApiEndpoint, ApiServerOptions } from './api-server.js';
export { ApiClient } from './api-client.js';
export { buildOpenApi } from './openapi.js';
export { ensureToken, readToken, tokenPath } from './token.js';
export type { ApiErrorBody } from './schemas.js';
