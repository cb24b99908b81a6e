import type { ErrorCodeValue } from './codes.js';

/**
 * Base class of every error Understudy throws for a caller to handle.
 * Callers branch on `code`, never on the message text. Every code is listed in docs/errors.md.
 */
export class UnderstudyError extends Error {
  /** Stable machine-readable code, `UNDERSTUDY_ERR_*`: one of {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** Extra structured context (file, line, field path, instance id, …). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCodeValue,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UnderstudyError';
    this.code = code;
    this.details = options?.details ?? {};
  }
}

/** Narrows an unknown thrown value to an {@link UnderstudyError}, optionally of one code. */
export function isUnderstudyError(err: unknown, code?: ErrorCodeValue): err is UnderstudyError {
  return err instanceof UnderstudyError && (code === undefined || err.code === code);
}
