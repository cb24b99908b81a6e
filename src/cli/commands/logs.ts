import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { ApiClient } from '../../api/index.js';
import type { InstanceRecord } from '../../control/index.js';
import { ErrorCode, UnderstudyError, isUnderstudyError } from '../../errors/index.js';
import { SqliteStateStore } from '../../store/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

export interface LogsOptions {
  dataDir: string;
  instance: string;
  follow: boolean;
  stderr: boolean;
  lines: number;
}

/** Finds the instance through the running API, or in the store when no control plane runs. */
async function findInstance(dataDir: string, id: string): Promise<InstanceRecord | undefined> {
  try {
    return (await ApiClient.fromDataDir(dataDir).instances()).find((i) => i.id === id);
  } catch (err) {
    if (!isUnderstudyError(err, ErrorCode.ApiUnreachable)) throw err;
  }
  const store = await SqliteStateStore.create({ dataDir });
  try {
    const rec = await store.get(`instances/${id}`);
    return rec ? (JSON.parse(rec.value) as InstanceRecord) : undefined;
  } finally {
    await store.close();
  }
}

function readRange(path: string, from: number, to: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** `understudy logs <instance> [-f]`: the last lines of an instance's output, optionally followed. */
export async function runLogs(options: LogsOptions): Promise<number> {
  try {
    const inst = await findInstance(options.dataDir, options.instance);
    if (!inst)
      throw new UnderstudyError(
        ErrorCode.NotFound,
        `no instance named '${options.instance}' (see 'understudy status')`,
      );
    const path = options.stderr ? inst.stderrPath : inst.stdoutPath;
    if (!path)
      throw new UnderstudyError(
        ErrorCode.NotFound,
        `instance '${options.instance}' has not been started, so it has no logs yet`,
      );
    let offset = sizeOf(path);
    const tail = readRange(path, Math.max(0, offset - 1024 * 1024), offset).toString('utf8');
    const lines = tail.split('\n');
    if (lines.at(-1) === '') lines.pop();
    const shown = lines.slice(-options.lines);
    if (shown.length) process.stdout.write(shown.join('\n') + '\n');
    if (!options.follow) return ExitCode.Ok;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const size = sizeOf(path);
        if (size < offset) offset = 0; // rotated or truncated: start over
        if (size > offset) {
          process.stdout.write(readRange(path, offset, size));
          offset = size;
        }
      }, 200);
      const stop = (): void => {
        clearInterval(timer);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}
