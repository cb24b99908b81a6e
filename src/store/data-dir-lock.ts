import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './data-dir.js';

/** Name of the lock file inside the data directory. */
export const DATA_DIR_LOCK_FILE = 'control.lock';

/** What the lock file holds (JSON). */
export interface DataDirLockOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux `/proc/<pid>/stat` field 22), to tell a reused pid apart. */
  startTime?: number;
  hostname: string;
  /** ISO time the lock was taken. */
  acquiredAt: string;
}

/** Releases a data-directory lock. Synchronous (usable in an `exit` handler) and idempotent. */
export type ReleaseDataDirLock = () => void;

/**
 * Claims `dataDir` for this process: at most one control process runs per data directory.
 * Writes `control.lock` (pid, process start time, host) with an exclusive create. A lock left by a
 * process that no longer exists (or whose pid now belongs to a different process) is taken over.
 *
 * Thrown when another live process holds the lock: `UNDERSTUDY_ERR_ALREADY_RUNNING`, with `details.pid`.
 * Thrown when the directory cannot be created or written: `UNDERSTUDY_ERR_STATE_DIR`.
 *
 * Limits: the lock is advisory and local to one host (a lock written on another host is never taken
 * over automatically). Taking over a stale lock is serialised by a second, short-lived file
 * (`control.lock.takeover`), so of several processes taking over at once exactly one wins; if a process
 * dies in the milliseconds it holds that file, it is considered abandoned after 10 s.
 */
export async function acquireDataDirLock(dataDir: string): Promise<ReleaseDataDirLock> {
  try {
    await mkdir(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.StateDir,
      `cannot create data directory ${dataDir}: ${(err as Error).message}`,
      {
        cause: err,
        details: { dataDir },
      },
    );
  }
  const lockPath = join(dataDir, DATA_DIR_LOCK_FILE);
  const me = currentOwner();
  const content = JSON.stringify(me) + '\n';
  const takeoverPath = `${lockPath}.takeover`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await createExclusive(lockPath, content)) return releaser(lockPath, me);
    const holder = await readOwner(lockPath);
    if (holder === 'missing') continue; // released meanwhile: try again
    if (holder !== 'unreadable' && isAlive(holder)) {
      throw new UnderstudyError(
        ErrorCode.AlreadyRunning,
        `another Understudy control process (pid ${holder.pid}) already runs with data directory ${dataDir}; stop it first, or use another data directory`,
        { details: { pid: holder.pid, lockFile: lockPath } },
      );
    }
    // Stale. Only the holder of the takeover mutex may remove a lock it did not write, and it re-checks
    // staleness while holding it: a fresh lock can only appear once the stale one is gone, so what it
    // removes is the stale lock it checked, never a live process's lock.
    if (!(await createExclusive(takeoverPath, content))) {
      await removeIfAbandoned(takeoverPath);
      await sleep(2 + Math.random() * 10);
      continue;
    }
    try {
      const again = await readOwner(lockPath);
      if (again === 'unreadable' || (again !== 'missing' && !isAlive(again))) {
        await unlink(lockPath).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw stateDirError(dataDir, err);
        });
      }
    } finally {
      await unlink(takeoverPath).catch(() => undefined);
    }
  }
  throw new UnderstudyError(
    ErrorCode.AlreadyRunning,
    `could not acquire ${lockPath}: it keeps changing hands`,
    {
      details: { lockFile: lockPath },
    },
  );
}

/** A takeover mutex is held for milliseconds; one older than this was left by a process that died holding it. */
const TAKEOVER_ABANDONED_MS = 10_000;

async function removeIfAbandoned(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (Date.now() - info.mtimeMs > TAKEOVER_ABANDONED_MS) await unlink(path);
  } catch {
    // Gone already, or removed by another process meanwhile.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function currentOwner(): DataDirLockOwner {
  const startTime = processStartTime(process.pid);
  return {
    pid: process.pid,
    ...(startTime === undefined ? {} : { startTime }),
    hostname: hostname(),
    acquiredAt: new Date().toISOString(),
  };
}

/** Creates `path` with `content` only if it does not exist; the content is complete the moment the file appears. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(tmp, 'w', PRIVATE_FILE_MODE);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw stateDirError(path, err);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function readOwner(path: string): Promise<DataDirLockOwner | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return 'unreadable';
  }
  return parseOwner(text) ?? 'unreadable';
}

function parseOwner(text: string): DataDirLockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<DataDirLockOwner>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
    return {
      pid: v.pid,
      ...(typeof v.startTime === 'number' ? { startTime: v.startTime } : {}),
      hostname: typeof v.hostname === 'string' ? v.hostname : '',
      acquiredAt: typeof v.acquiredAt === 'string' ? v.acquiredAt : '',
    };
  } catch {
    return undefined;
  }
}

/** Whether the lock's owner still runs. A lock from another host counts as alive: we cannot check it. */
function isAlive(owner: DataDirLockOwner): boolean {
  if (owner.hostname !== '' && owner.hostname !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // ESRCH: no such process
  }
  if (processState(owner.pid) === 'Z') return false; // exited, not yet reaped by its parent
  if (owner.startTime !== undefined) {
    const now = processStartTime(owner.pid);
    if (now !== undefined && now !== owner.startTime) return false; // the pid was reused
  }
  return true;
}

/** Linux: the state letter of `pid` (R, S, Z, …); undefined elsewhere or when unreadable. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined;
  }
}

/** Linux: start time of `pid` in clock ticks since boot; undefined elsewhere or when unreadable. */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]); // field 22 overall; fields[0] is field 3
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function releaser(lockPath: string, me: DataDirLockOwner): ReleaseDataDirLock {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      const holder = parseOwner(readFileSync(lockPath, 'utf8'));
      // Only remove our own lock: never one another process took over after we lost it.
      if (holder?.pid === me.pid && holder.startTime === me.startTime) unlinkSync(lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  };
}

function stateDirError(path: string, err: unknown): UnderstudyError {
  return new UnderstudyError(
    ErrorCode.StateDir,
    `cannot write the data directory lock ${path}: ${(err as Error).message}`,
    {
      cause: err,
      details: { path },
    },
  );
}

/**
 * Whether a local process runs (not a zombie). For clients that find a control process's pid in the
 * data directory.
 */
export function isLocalProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return processState(pid) !== 'Z';
}
