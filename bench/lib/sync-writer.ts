// Runs the continuous workload's writer (sync-writer-child.ts) in its own process.
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** One write: when it returned (ms since epoch) and the file's size after it. */
export interface WriteReport {
  readonly at: number;
  readonly end: number;
}

/** Appends `size` random bytes to `file` `count` times, one every `intervalMs`, from a child process. */
export async function runWriter(
  file: string,
  count: number,
  intervalMs: number,
  size: number,
): Promise<WriteReport[]> {
  const child = fork(
    join(here, 'sync-writer-child.ts'),
    [file, String(count), String(intervalMs), String(size)],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  try {
    return await new Promise<WriteReport[]>((resolve, reject) => {
      child.on('message', (m: { type: string; writes?: WriteReport[] }) => {
        if (m.type === 'ready') child.send({ type: 'go' });
        else if (m.type === 'done') resolve(m.writes ?? []);
      });
      child.once('exit', (code) => reject(new Error(`writer exited ${code}`)));
    });
  } finally {
    if (child.exitCode === null) child.kill();
  }
}
