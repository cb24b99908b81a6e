/**
 * Instance log files, written directly by the instance's processes.
 *
 * Why the child writes the file itself (its stdout/stderr are file descriptors opened O_APPEND by the runtime)
 * instead of a pipe the runtime reads: a pipe's reading end lives in the control process, so when the control
 * process dies or restarts, the instance's next write gets SIGPIPE/EPIPE and the instance dies or loses output —
 * which would defeat `adopt()` and failover of the control plane. With the file handed to the child, logs keep
 * flowing across a control-process restart. The price: the size bound is enforced by the runtime checking the
 * file on a timer and rotating it by copy-truncate (the same scheme as logrotate's `copytruncate`), so between
 * two checks a file can exceed the bound by what the instance writes in one interval, and the few bytes written
 * between the final read and the truncate are lost (microseconds; counted as unknowable, see docs).
 */
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Outcome of one {@link rotateIfOver} check. */
export interface RotationResult {
  rotated: boolean;
  /**
   * Bytes that did not fit in the rotated `.1` file (only the last `maxBytes` of the file are kept there),
   * counted so that this loss is reported rather than silent.
   */
  droppedBytes: number;
}

/** Opens (creating if needed) a log file for appending and returns its file descriptor number. The caller closes it. */
export async function openLogForAppend(path: string): Promise<{ fd: number; close: () => Promise<void> }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle = await open(path, 'a', 0o600);
  // A log file from an older version may be 0640: instance output can carry secrets.
  await handle.chmod(0o600);
  return { fd: handle.fd, close: () => handle.close() };
}

/**
 * If `path` is larger than `maxBytes`, moves its content to `<path>.1` (replacing the previous `.1`, keeping at
 * most the last `maxBytes` bytes) and truncates `path` to zero. Writers that opened `path` with O_APPEND continue
 * at the new end. A missing file is not an error.
 */
export async function rotateIfOver(path: string, maxBytes: number): Promise<RotationResult> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return { rotated: false, droppedBytes: 0 };
  }
  if (size <= maxBytes) return { rotated: false, droppedBytes: 0 };

  const file = await open(path, 'r+');
  try {
    // Read the tail up to the current end, following the file while it grows, then truncate right away to keep
    // the window in which new bytes could be lost as small as possible.
    const chunks: Buffer[] = [];
    let kept = 0;
    let position = Math.max(0, size - maxBytes);
    let dropped = position;
    const buffer = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)));
      kept += bytesRead;
      position += bytesRead;
      while (kept > maxBytes && chunks.length > 0) {
        const first = chunks[0] as Buffer;
        const excess = kept - maxBytes;
        if (first.length <= excess) {
          chunks.shift();
          kept -= first.length;
          dropped += first.length;
        } else {
          chunks[0] = first.subarray(excess);
          kept -= excess;
          dropped += excess;
        }
      }
    }
    await file.truncate(0);
    const rotatedPath = `${path}.1`;
    const tmp = `${rotatedPath}.tmp-${process.pid}`;
    const out = await open(tmp, 'w', 0o600);
    try {
      await out.writeFile(Buffer.concat(chunks, kept));
    } finally {
      await out.close();
    }
    await rename(tmp, rotatedPath);
    return { rotated: true, droppedBytes: dropped };
  } finally {
    await file.close();
  }
}

/** Log rotations of several files, each file's rotations one after another (never two at once on one file). */
export class SerialRotations {
  readonly #pending = new Map<string, Promise<number>>();

  /** Rotates `path` if over `maxBytes`, after any rotation of it under way; resolves the dropped bytes. */
  rotate(path: string, maxBytes: number): Promise<number> {
    const previous = this.#pending.get(path) ?? Promise.resolve(0);
    const run = async (): Promise<number> => (await rotateIfOver(path, maxBytes)).droppedBytes;
    const next = previous.then(run, run);
    this.#pending.set(path, next);
    void next
      .finally(() => {
        if (this.#pending.get(path) === next) this.#pending.delete(path);
      })
      .catch(() => undefined);
    return next;
  }
}
