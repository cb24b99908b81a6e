import { chmodSync, closeSync, lstatSync, mkdirSync, openSync } from 'node:fs';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** Mode of the data directory and of every directory Understudy creates in it: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file Understudy creates in the data directory (store, lock, logs): owner only. */
export const PRIVATE_FILE_MODE = 0o600;

/** What {@link prepareDataDir} found and did. */
export interface PreparedDataDir {
  /** The directory did not exist and was created 0700. */
  created: boolean;
  /**
   * The directory existed with access for group or others (e.g. created 0755 by an older version) and was
   * tightened to 0700; its earlier mode (permission bits).
   */
  tightenedFrom?: number;
}

/**
 * Creates the data directory owner-only (0700), or tightens an existing one that group or others may
 * read: it holds the store, whose specs carry `env` values (secrets). Missing parents are created 0700
 * too.
 * Thrown when it cannot be created or is not a directory: `UNDERSTUDY_ERR_STATE_DIR`.
 */
export function prepareDataDir(dataDir: string): PreparedDataDir {
  try {
    const made = mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const info = lstatSync(dataDir);
    if (!info.isDirectory()) throw new Error('not a directory');
    const mode = info.mode & 0o777;
    if (made !== undefined) {
      // mkdir's mode passes through the umask: a umask can only remove bits, so 0700 or less.
      return { created: true };
    }
    if ((mode & 0o077) === 0) return { created: false };
    chmodSync(dataDir, mode & PRIVATE_DIR_MODE);
    return { created: false, tightenedFrom: mode };
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.StateDir,
      `cannot prepare the data directory ${dataDir}: ${(err as Error).message}`,
      { cause: err, details: { dataDir } },
    );
  }
}

/**
 * Makes sure `file` exists and is owner-only (0600): creates it empty with that mode, or tightens an
 * existing one. With `onlyIfExists`, a missing file is left missing.
 */
export function ensurePrivateFile(file: string, onlyIfExists = false): void {
  if (onlyIfExists) {
    try {
      chmodSync(file, PRIVATE_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return;
  }
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  chmodSync(file, PRIVATE_FILE_MODE);
}
