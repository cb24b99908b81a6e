import { parseListen, type ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { RouterOptions } from '../router/index.js';

/** Where a router listens when neither the spec nor the caller gives an address: loopback, any free port. */
export const DEFAULT_ROUTER_LISTEN = '127.0.0.1:0';

/**
 * The router options a service's spec asks for, the same for the router in the control process and a
 * standalone `understudy router`: mode, public address (`listen` overrides `routing.listen`), mutating
 * methods and PUT/DELETE retry.
 */
export function routerOptionsOf(spec: ServiceSpec, epoch: number, listen?: string): RouterOptions {
  const { host, port } = parseListen(listen ?? spec.routing.listen ?? DEFAULT_ROUTER_LISTEN);
  const m = spec.echo.mutations;
  return {
    service: spec.name,
    mode: spec.routing.protocol,
    host,
    port,
    epoch,
    mutatingMethods: m.methods,
    retryPutDelete: m.idempotent.includes('PUT') && m.idempotent.includes('DELETE'),
    interceptPathPrefixes: m.paths,
  };
}

/**
 * Reads a service spec as the control plane stored it under `services/<name>` (already validated when it
 * was loaded). Thrown: UNDERSTUDY_ERR_CONFIG when the stored value is not a service spec.
 */
export function parseStoredSpec(key: string, value: string): ServiceSpec {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    throw new UnderstudyError(ErrorCode.Config, `the stored spec at '${key}' is not JSON`, { cause: err });
  }
  const s = v as Partial<ServiceSpec> | null;
  if (
    !s ||
    typeof s !== 'object' ||
    typeof s.name !== 'string' ||
    typeof s.ports !== 'object' ||
    typeof s.routing?.protocol !== 'string' ||
    typeof s.echo?.mode !== 'string' ||
    !Array.isArray(s.echo.mutations?.methods) ||
    typeof s.shadow?.sample !== 'number'
  )
    throw new UnderstudyError(
      ErrorCode.Config,
      `the stored spec at '${key}' is not a service spec (written by another version of understudy?)`,
      { details: { key } },
    );
  return s as ServiceSpec;
}
