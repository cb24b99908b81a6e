// The file writes of the durable mutation log (mutation-log-durable.ts): the seam tests use to make a
// write fail, and the group-commit batch that many appends share.
import { close, fdatasync, fsync, ftruncate, open, write } from 'node:fs';
import { promisify } from 'node:util';
import type { Mutation } from './mutation.js';

/**
 * The file writes of the log: a seam so that tests can make a write or an fsync fail (disk full) where
 * a real full file system is not available (mounting a tmpfs needs root).
 */
export interface MutationLogIo {
  /** Writes all of `buf` at the end of the file open as `fd` (opened for appending). */
  write(fd: number, buf: Buffer): Promise<void>;
  /** Makes the file's data durable (fdatasync). */
  sync(fd: number): Promise<void>;
}

/** The real file writes. */
export const nodeMutationLogIo: MutationLogIo = {
  async write(fd, buf) {
    let off = 0;
    while (off < buf.length) {
      off += await new Promise<number>((resolve, reject) =>
        write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n))),
      );
    }
  },
  sync: (fd) =>
    new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
};

/** The descriptor calls of the log's files (open, close, fsync, ftruncate), as promises. */
export const openAsync = promisify(open);
export const closeAsync = promisify(close);
export const fsyncAsync = promisify(fsync);
export const ftruncateAsync = promisify(ftruncate);

/** Appends written and fsynced together: one promise for all of them (no allocation per append). */
export interface PendingBatch {
  bufs: Buffer[];
  firstSeq: number;
  lastSeq: number;
  lastAt: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

export function pendingBatch(first: Mutation, buf: Buffer): PendingBatch {
  let resolve = (): void => undefined;
  let reject = (_: Error): void => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A failure is counted by the log; callers that do not wait for durability (async mode) need not
  // handle it, so it must not surface as an unhandled rejection.
  done.catch(() => undefined);
  return { bufs: [buf], firstSeq: first.seq, lastSeq: first.seq, lastAt: first.at, done, resolve, reject };
}
