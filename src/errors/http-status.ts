import { ErrorCode, type ErrorCodeValue } from './codes.js';

/**
 * The HTTP status an API answers with for each error code (fastify's table style). docs/errors.md has
 * the same column; `codes.test.ts` keeps the two in step. A new code needs a status here to compile.
 */
export const HTTP_STATUS: Readonly<Record<ErrorCodeValue, number>> = {
  [ErrorCode.Config]: 400,
  [ErrorCode.Usage]: 400,
  [ErrorCode.StoreConflict]: 409,
  [ErrorCode.Unsafe]: 409,
  [ErrorCode.StoreLease]: 409,
  [ErrorCode.StoreUnavailable]: 503,
  [ErrorCode.StoreCompacted]: 410,
  [ErrorCode.NotLeader]: 503,
  [ErrorCode.RuntimeSpawn]: 500,
  [ErrorCode.RuntimeUnknownInstance]: 404,
  [ErrorCode.RuntimeLimits]: 500,
  [ErrorCode.StateDir]: 500,
  [ErrorCode.Port]: 503,
  [ErrorCode.ApiAuth]: 401,
  [ErrorCode.ApiRequest]: 400,
  [ErrorCode.ApiHost]: 421,
  [ErrorCode.ApiUnreachable]: 503,
  [ErrorCode.AgentUnreachable]: 503,
  [ErrorCode.TlsCaMissing]: 500,
  [ErrorCode.TlsCertificate]: 502,
  [ErrorCode.TlsKeyPermissions]: 500,
  [ErrorCode.TlsRequired]: 426,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.AlreadyRunning]: 409,
  [ErrorCode.SyncFrame]: 400,
  [ErrorCode.SyncPath]: 400,
  [ErrorCode.SyncVerify]: 422,
  [ErrorCode.SyncTransport]: 502,
  [ErrorCode.PredictInput]: 400,
  [ErrorCode.NotReplicated]: 503,
  [ErrorCode.MutationLogWrite]: 503,
  [ErrorCode.MutationLogCorrupt]: 500,
  [ErrorCode.Failover]: 409,
  [ErrorCode.RouterConfig]: 400,
  [ErrorCode.RouterUnavailable]: 503,
  [ErrorCode.RouterRequest]: 400,
  [ErrorCode.RouterHaproxy]: 502,
  [ErrorCode.StateTransfer]: 502,
  [ErrorCode.ExternalHook]: 502,
  [ErrorCode.Internal]: 500,
};

/** The HTTP status for an error code; 500 for a code that is not in {@link HTTP_STATUS}. */
export function httpStatusOf(code: string): number {
  return Object.hasOwn(HTTP_STATUS, code) ? HTTP_STATUS[code as ErrorCodeValue] : 500;
}
