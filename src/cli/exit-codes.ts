import { ErrorCode, isUnderstudyError } from '../errors/index.js';

/** Exit codes of the `understudy` command. */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** A runtime failure: something did not work. */
  Failure: 1,
  /** A usage or configuration error: nothing was started. */
  Usage: 2,
} as const;

const USAGE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.Config,
  ErrorCode.Usage,
  ErrorCode.StateDir,
  ErrorCode.Port,
  ErrorCode.AlreadyRunning,
]);

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  return isUnderstudyError(err) && USAGE_CODES.has(err.code) ? ExitCode.Usage : ExitCode.Failure;
}

/** Prints an error as one paragraph (never a stack trace) and returns its exit code. */
export function reportError(err: unknown): number {
  if (isUnderstudyError(err)) {
    const heading = err.code === ErrorCode.Config ? 'understudy: invalid configuration:\n' : 'understudy: ';
    process.stderr.write(`${heading}${err.message}\n`);
  } else {
    process.stderr.write(`understudy: unexpected error: ${(err as Error)?.message ?? String(err)}\n`);
    if (process.env.UNDERSTUDY_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  }
  return exitCodeFor(err);
}
