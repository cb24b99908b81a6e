import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

const TOKEN_FILE = 'token';

/** Path of the API token file in a data directory. */
export function tokenPath(dataDir: string): string {
  return join(dataDir, TOKEN_FILE);
}

/**
 * Returns the API bearer token of a data directory, generating it (32 random bytes, hex) on first start.
 * The file is created with mode 0600 and kept so (a token file readable by others is tightened); a data
 * directory created here is created 0700.
 */
export function ensureToken(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = tokenPath(dataDir);
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const token = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(token)) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // A new file, created 0600 with the token in it, then renamed over the old one: the token is never
  // in a file with another mode, and a reader never sees half of it.
  const token = randomBytes(32).toString('hex');
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, token + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return token;
}

/** Reads the token for a client. Thrown when missing: UNDERSTUDY_ERR_API_UNREACHABLE. */
export function readToken(dataDir: string): string {
  try {
    return readFileSync(tokenPath(dataDir), 'utf8').trim();
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.ApiUnreachable,
      `no API token in ${dataDir}: no control plane has run with this data directory (start one with 'understudy up')`,
      { cause: err },
    );
  }
}
