import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import { expectCode } from './contract-support.js';
import { DATA_DIR_LOCK_FILE, acquireDataDirLock } from './data-dir-lock.js';
import type { ReleaseDataDirLock } from './data-dir-lock.js';

function startTimeOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid as number;
}

describe('acquireDataDirLock', () => {
  let dataDir: string;
  let lockFile: string;
  const releases: ReleaseDataDirLock[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'understudy-lock-'));
    lockFile = join(dataDir, DATA_DIR_LOCK_FILE);
  });
  afterEach(async () => {
    for (const release of releases.splice(0)) release();
    await rm(dataDir, { recursive: true, force: true });
  });

  const acquire = async (): Promise<ReleaseDataDirLock> => {
    const release = await acquireDataDirLock(dataDir);
    releases.push(release);
    return release;
  };

  it('writes a lock file with this process id, creating the directory if needed', async () => {
    dataDir = join(dataDir, 'nested');
    lockFile = join(dataDir, DATA_DIR_LOCK_FILE);
    await acquire();
    const owner = JSON.parse(await readFile(lockFile, 'utf8')) as {
      pid: number;
      hostname: string;
      startTime: number;
    };
    expect(owner.pid).toBe(process.pid);
    expect(owner.hostname).toBe(hostname());
    expect(owner.startTime).toBe(startTimeOf(process.pid));
  });

  it('creates the lock file readable by its owner only, in a 0700 directory', async () => {
    dataDir = join(dataDir, 'private');
    lockFile = join(dataDir, DATA_DIR_LOCK_FILE);
    await acquire();
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(((await stat(lockFile)).mode & 0o777).toString(8)).toBe('600');
  });

  it('refuses a second claim while the lock is held, naming the holder', async () => {
    await acquire();
    let error: unknown;
    await acquireDataDirLock(dataDir).catch((err: unknown) => {
      error = err;
    });
    expect(isUnderstudyError(error, ErrorCode.AlreadyRunning)).toBe(true);
    expect((error as { details: { pid: number } }).details.pid).toBe(process.pid);
  });

  it('can be claimed again after release, and releasing twice is harmless', async () => {
    const release = await acquire();
    release();
    release();
    await expect(readFile(lockFile)).rejects.toThrow();
    await acquire();
  });

  it('takes over a lock left by a process that no longer exists', async () => {
    const pid = await deadPid();
    await writeFile(lockFile, JSON.stringify({ pid, hostname: hostname(), acquiredAt: '' }));
    await acquire();
    expect(JSON.parse(await readFile(lockFile, 'utf8')).pid).toBe(process.pid);
  });

  it('refuses a lock held by another live process', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      const pid = child.pid as number;
      await writeFile(
        lockFile,
        JSON.stringify({ pid, startTime: startTimeOf(pid), hostname: hostname(), acquiredAt: '' }),
      );
      await expectCode(acquireDataDirLock(dataDir), ErrorCode.AlreadyRunning);
      expect(JSON.parse(await readFile(lockFile, 'utf8')).pid).toBe(pid);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  it('takes over a lock whose pid now belongs to a different process', async () => {
    const reused = {
      pid: process.pid,
      startTime: startTimeOf(process.pid) - 1,
      hostname: hostname(),
      acquiredAt: '',
    };
    await writeFile(lockFile, JSON.stringify(reused));
    await acquire();
    expect(JSON.parse(await readFile(lockFile, 'utf8')).startTime).toBe(startTimeOf(process.pid));
  });

  it('takes over an unreadable lock file', async () => {
    await writeFile(lockFile, '{"pid": tor');
    await acquire();
    expect(JSON.parse(await readFile(lockFile, 'utf8')).pid).toBe(process.pid);
  });

  it('lets exactly one of several racing claims on a stale lock win', async () => {
    await writeFile(lockFile, JSON.stringify({ pid: await deadPid(), hostname: hostname(), acquiredAt: '' }));
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => acquireDataDirLock(dataDir)));
    const won = results.filter(
      (r): r is PromiseFulfilledResult<ReleaseDataDirLock> => r.status === 'fulfilled',
    );
    releases.push(...won.map((r) => r.value));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected')
        expect(isUnderstudyError(r.reason, ErrorCode.AlreadyRunning), String(r.reason)).toBe(true);
    }
  });

  it('does not remove a lock that another process took over after it was released', async () => {
    const release = await acquire();
    const other = JSON.stringify({ pid: 1, hostname: hostname(), acquiredAt: '' });
    await writeFile(lockFile, other);
    release();
    expect(await readFile(lockFile, 'utf8')).toBe(other);
  });

  it('fails with UNDERSTUDY_ERR_STATE_DIR when the data directory cannot be created', async () => {
    const file = join(dataDir, 'file');
    await writeFile(file, 'x');
    await expectCode(acquireDataDirLock(join(file, 'sub')), ErrorCode.StateDir);
  });
});
