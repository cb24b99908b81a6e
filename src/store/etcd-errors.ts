import { ErrorCode, UnderstudyError, isUnderstudyError } from '../errors/index.js';

/** The error for a lease etcd does not know (never granted, expired or revoked). */
export function leaseNotFound(leaseId: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.StoreLease, `lease ${leaseId} does not exist or has expired`, {
    details: { leaseId },
  });
}

/** An etcd lease id (a decimal int64, as a string), or `UNDERSTUDY_ERR_STORE_LEASE` for anything else. */
export function leaseIdOf(leaseId: string): string {
  if (!/^\d{1,19}$/.test(leaseId)) throw leaseNotFound(leaseId);
  return leaseId;
}

/**
 * Maps a failure of the etcd client to our codes: our own errors pass through; a compaction is
 * `UNDERSTUDY_ERR_STORE_COMPACTED`; everything else (connection refused or lost, deadline exceeded,
 * a closed client, an auth failure) is `UNDERSTUDY_ERR_STORE_UNAVAILABLE` with a message naming the
 * endpoints and the operation.
 */
export function toEtcdError(err: unknown, endpoints: readonly string[], operation: string): UnderstudyError {
  if (isUnderstudyError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const where = endpoints.join(',');
  if (/compacted/i.test(message)) {
    return new UnderstudyError(
      ErrorCode.StoreCompacted,
      `etcd at ${where}: ${operation} needs history that was compacted (${message})`,
      {
        cause: err,
        details: { endpoints: [...endpoints], operation },
      },
    );
  }
  return new UnderstudyError(
    ErrorCode.StoreUnavailable,
    `etcd at ${where} is unavailable: ${operation} failed: ${message}`,
    { cause: err, details: { endpoints: [...endpoints], operation } },
  );
}
