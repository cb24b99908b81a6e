import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** File name of the cluster key in a data directory. */
export const CLUSTER_KEY_FILE = 'cluster.key';

/** The cluster key file of a data directory (`<dataDir>/cluster.key`). */
export function clusterKeyPath(dataDir: string): string {
  return join(dataDir, CLUSTER_KEY_FILE);
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * The cluster secret every agent API request carries, from `path`; generated on first use (32 random
 * bytes, hex) in a file created 0600 (renamed into place, so never readable by others and never half
 * written). A key file readable by others is tightened to 0600. The secret is kept out of the store:
 * the store is readable by every process of the cluster, the key only by its owner.
 */
export function ensureClusterKey(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    return readClusterKey(path);
  } catch (err) {
    if ((err as { details?: { missing?: boolean } }).details?.missing !== true) throw err;
  }
  const key = randomBytes(32).toString('hex');
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, key + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return key;
}

/**
 * Reads the cluster secret from `path` (tightening the file to 0600 when others could read it).
 * Thrown: UNDERSTUDY_ERR_CONFIG when the file is missing (`details.missing`) or does not hold a key.
 */
export function readClusterKey(path: string): string {
  let text: string;
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UnderstudyError(
      ErrorCode.Config,
      missing
        ? `no cluster key at ${path}: copy the cluster.key of the first agent or control process there (mode 0600)`
        : `cannot read the cluster key ${path}: ${(err as Error).message}`,
      { cause: err, details: { missing } },
    );
  }
  if (!KEY.test(text))
    throw new UnderstudyError(
      ErrorCode.Config,
      `the cluster key ${path} must hold 64 hex characters (32 bytes); it holds something else`,
    );
  return text;
}
