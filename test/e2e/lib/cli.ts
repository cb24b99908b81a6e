import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** The built CLI entry, as users run it. */
export const cliBin = fileURLToPath(new URL('../../../bin/understudy.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `understudy <args>` to completion. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): CliResult {
  const r = spawnSync(process.execPath, [cliBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs `understudy <args>` to completion without blocking this process, so that several short
 * commands can run at once (`Promise.all`): each one spends most of its time loading the CLI.
 */
export function runCliAsync(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
    });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running `understudy up` in the background. */
export interface UpProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `understudy up <file> -d <dataDir>`; resolves once its API file exists (or it exited). */
export async function startUp(
  file: string,
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<UpProcess> {
  const child = spawn(process.execPath, [cliBin, 'up', file, '-d', dataDir], {
    cwd: repoRoot,
    env: { ...process.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const ours = (): boolean => {
    try {
      return (JSON.parse(readFileSync(`${dataDir}/api.json`, 'utf8')) as { pid: number }).pid === child.pid;
    } catch {
      return false;
    }
  };
  try {
    // Generous: on a loaded 2-core machine a start (or a restart that recovers state) can take a while.
    await waitFor(
      () => done || ours(),
      45_000,
      () => `up did not start: ${out}`,
    );
  } catch (err) {
    // The caller never gets the process to stop: stop it here (it stops its instances).
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (!done) child.kill('SIGKILL');
    throw err;
  }
  return { child, output: () => out, exited };
}

/** Polls `check` until it returns true. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  describe: () => string = () => 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${describe()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** PIDs of live processes whose environment contains `NAME=value` (how tests find every process a run started). */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1');
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && (env + '\0').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone or not ours
    }
  }
  return pids;
}

/** Whether a pid is alive (and not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A long-running `understudy` process a test started, with everything it printed. */
export interface CliProc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `understudy <args>` in the background (stdout and stderr collected); `track` gets it for the clean-up. */
export function spawnCli(args: string[], env: Record<string, string> = {}, track?: CliProc[]): CliProc {
  const child = spawn(process.execPath, [cliBin, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const proc = { child, output: () => out, exited };
  track?.push(proc);
  return proc;
}

/**
 * The clean-up of a test that SIGKILLs its own processes: every one of `procs` still running is
 * SIGKILLed and awaited, then every process carrying `NAME=value` in its environment (instances outlive
 * their control process or agent: they run in their own process groups).
 */
export async function killAll(procs: CliProc[], tagged: [name: string, value: string]): Promise<void> {
  for (const p of procs) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  killTagged(...tagged);
}

/** SIGKILLs every live process whose environment holds `NAME=value`. */
export function killTagged(name: string, value: string): void {
  for (const pid of processesWithEnv(name, value)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
