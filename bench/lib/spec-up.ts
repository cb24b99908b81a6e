import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../../src/api/index.js';

/** Repository root. */
export const root = fileURLToPath(new URL('../../', import.meta.url));

/** A running `understudy up` in its own temporary data directory. */
export interface SpecUp {
  api: ApiClient;
  /** Pid of the control process (`understudy up`). */
  pid: number;
  /** Stops the control plane (and every instance) and removes the temporary directory. */
  stop(): Promise<void>;
}

/** Starts `understudy up` (the built CLI, as users run it) on the spec text given; resolves once its API answers. */
export async function startSpecUp(name: string, specText: string): Promise<SpecUp> {
  if (!existsSync(join(root, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
  const work = mkdtempSync(join(tmpdir(), `understudy-bench-${name}-`));
  const spec = join(work, 'understudy.yaml');
  writeFileSync(spec, specText);
  const dataDir = join(work, 'data');
  // UNDERSTUDY_BENCH_CPU_PROF=<dir>: the control process writes a V8 CPU profile there when it stops.
  // UNDERSTUDY_BENCH_NODE_ARGS: more node flags for it (e.g. --perf-basic-prof, for `perf record`: a
  // V8 profile counts a process waiting for a CPU inside a system call as time spent there).
  const prof = process.env.UNDERSTUDY_BENCH_CPU_PROF;
  const extra = process.env.UNDERSTUDY_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const nodeArgs = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), ...extra];
  const up = spawn(
    process.execPath,
    [...nodeArgs, join(root, 'bin/understudy.js'), 'up', spec, '-d', dataDir],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = new Promise((r) => up.once('exit', r));
  const stop = async (): Promise<void> => {
    up.kill('SIGINT');
    await exited;
    rmSync(work, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  while (!existsSync(join(dataDir, 'api.json'))) {
    if (Date.now() > deadline || up.exitCode !== null) {
      await stop();
      throw new Error('the control plane did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { api: ApiClient.fromDataDir(dataDir), pid: up.pid ?? 0, stop };
}
