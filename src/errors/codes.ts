/**
 * Every error code Understudy uses. docs/errors.md lists the same codes with their meaning;
 * `codes.test.ts` keeps the two in step. Add a code here and in the doc together.
 */
export const ErrorCode = {
  /** A configuration file could not be read, parsed or validated. */
  Config: 'UNDERSTUDY_ERR_CONFIG',
  /** A CLI flag or argument is invalid. */
  Usage: 'UNDERSTUDY_ERR_USAGE',
  /** A compare-and-set lost: the record's revision changed under the caller. */
  StoreConflict: 'UNDERSTUDY_ERR_STORE_CONFLICT',
  /** A lease does not exist or has expired. */
  StoreLease: 'UNDERSTUDY_ERR_STORE_LEASE',
  /** The store could not be opened or is closed. */
  StoreUnavailable: 'UNDERSTUDY_ERR_STORE_UNAVAILABLE',
  /** A watch asked to replay history that the store has already compacted away. */
  StoreCompacted: 'UNDERSTUDY_ERR_STORE_COMPACTED',
  /** A guarded write was refused: the writer no longer holds the leadership its guard names (it was deposed). */
  NotLeader: 'UNDERSTUDY_ERR_NOT_LEADER',
  /** A process could not be started (command missing, not executable, cwd missing). */
  RuntimeSpawn: 'UNDERSTUDY_ERR_RUNTIME_SPAWN',
  /** The instance id is unknown to the runtime. */
  RuntimeUnknownInstance: 'UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE',
  /** A resource limit could not be applied (cgroups unavailable or rejected the value). */
  RuntimeLimits: 'UNDERSTUDY_ERR_RUNTIME_LIMITS',
  /** A state directory is missing and cannot be created, or is not writable. */
  StateDir: 'UNDERSTUDY_ERR_STATE_DIR',
  /** No free port could be allocated, or a fixed port is already in use. */
  Port: 'UNDERSTUDY_ERR_PORT',
  /** An API request was not authenticated. */
  ApiAuth: 'UNDERSTUDY_ERR_API_AUTH',
  /** An API request body or parameter failed validation. */
  ApiRequest: 'UNDERSTUDY_ERR_API_REQUEST',
  /** An API request named a host other than the API's own listen address (DNS-rebinding defence). */
  ApiHost: 'UNDERSTUDY_ERR_API_HOST',
  /** The API could not be reached (control plane not running). */
  ApiUnreachable: 'UNDERSTUDY_ERR_API_UNREACHABLE',
  /** An agent (`understudy agent`) could not be reached over its API: down, wrong address, or timed out. */
  AgentUnreachable: 'UNDERSTUDY_ERR_AGENT_UNREACHABLE',
  /** TLS is on but the cluster CA file (`cluster-ca.pem` beside the cluster key) is missing. */
  TlsCaMissing: 'UNDERSTUDY_ERR_TLS_CA_MISSING',
  /** A certificate was refused: malformed, expired or not yet valid, not issued by the cluster CA, or not naming its peer. */
  TlsCertificate: 'UNDERSTUDY_ERR_TLS_CERTIFICATE',
  /** A file holding a TLS private key (the cluster CA) is readable by others or not a regular file. */
  TlsKeyPermissions: 'UNDERSTUDY_ERR_TLS_KEY_PERMISSIONS',
  /** Plain HTTP (or TCP) met a peer that speaks only TLS, or a TLS client was given a plain `http://` address. */
  TlsRequired: 'UNDERSTUDY_ERR_TLS_REQUIRED',
  /** A named service or instance does not exist. */
  NotFound: 'UNDERSTUDY_ERR_NOT_FOUND',
  /** Another control process already runs with this data directory. */
  AlreadyRunning: 'UNDERSTUDY_ERR_ALREADY_RUNNING',
  /** A sync frame is malformed, oversized, unauthenticated, or from an unknown version. */
  SyncFrame: 'UNDERSTUDY_ERR_SYNC_FRAME',
  /** A sync path is unsafe (absolute, `..`, through a symlink, a device file). */
  SyncPath: 'UNDERSTUDY_ERR_SYNC_PATH',
  /** A delta or file failed verification against its source hash. */
  SyncVerify: 'UNDERSTUDY_ERR_SYNC_VERIFY',
  /** The sync transport failed (connection lost, peer rejected, timeout). */
  SyncTransport: 'UNDERSTUDY_ERR_SYNC_TRANSPORT',
  /** A time series or trace input is malformed. */
  PredictInput: 'UNDERSTUDY_ERR_PREDICT_INPUT',
  /** Write-through (strict): the primary applied a write but no echo did in time; the client is not acknowledged. */
  NotReplicated: 'UNDERSTUDY_ERR_NOT_REPLICATED',
  /** The durable mutation log could not write or fsync (disk full, I/O error): nothing it failed to write was acknowledged as durable. */
  MutationLogWrite: 'UNDERSTUDY_ERR_MUTATION_LOG_WRITE',
  /** The durable mutation log is damaged before its last record (not a torn tail): it is refused, naming the file and offset. */
  MutationLogCorrupt: 'UNDERSTUDY_ERR_MUTATION_LOG_CORRUPT',
  /** A failover or switchover could not be carried out (no eligible echo, epoch moved, promotion failed). */
  Failover: 'UNDERSTUDY_ERR_FAILOVER',
  /** Router options are invalid (bad address, fraction out of range, epoch going backwards). */
  RouterConfig: 'UNDERSTUDY_ERR_ROUTER_CONFIG',
  /** The router could not forward a request: no backend available in time, or the backend failed and the request could not be retried. */
  RouterUnavailable: 'UNDERSTUDY_ERR_ROUTER_UNAVAILABLE',
  /** The router refused a request it cannot forward unambiguously (malformed or ambiguous target, not exactly one Host): HTTP 400. */
  RouterRequest: 'UNDERSTUDY_ERR_ROUTER_REQUEST',
  /** HAProxy's Runtime API could not be reached or rejected a command. */
  RouterHaproxy: 'UNDERSTUDY_ERR_ROUTER_HAPROXY',
  /** A runtime-state transfer between two instances failed (export or import refused, too large, too slow). */
  StateTransfer: 'UNDERSTUDY_ERR_STATE_TRANSFER',
  /** A hook of an external echo (follow, lag, promote, fence, rejoin) failed, timed out or printed no valid answer. */
  ExternalHook: 'UNDERSTUDY_ERR_EXTERNAL_HOOK',
  /** An operator action refused because it would interrupt a service (a lone primary's restart without `--force`). */
  Unsafe: 'UNDERSTUDY_ERR_UNSAFE',
  /** An unexpected failure with no more specific code (a bug, or an error from a dependency). */
  Internal: 'UNDERSTUDY_ERR_INTERNAL',
} as const;

/** One of the stable error codes. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether `value` is one of the stable error codes (for codes read from the network or a file). */
export function isErrorCode(value: unknown): value is ErrorCodeValue {
  return typeof value === 'string' && CODES.has(value);
}
