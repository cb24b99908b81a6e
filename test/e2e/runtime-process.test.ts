import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../../src/errors/index.js';
import {
  listGroupProcesses,
  ProcessRuntime,
  type InstanceExit,
  type InstanceHandle,
} from '../../src/runtime/index.js';
import { isAlive, launchIn, script, tempDir, tempDirIn, waitFor } from './fixtures/runtime/helpers.js';

let runtime: ProcessRuntime;
let tmp: { dir: string; remove: () => void };

type Mode = 'with cgroups where writable' | 'without cgroups';
const modes: Mode[] = ['with cgroups where writable', 'without cgroups'];

/** Gives each test of the enclosing describe a fresh runtime and temp dir; `without cgroups` forces the /proc-only paths. */
function useRuntime(mode: Mode = modes[0] as Mode): void {
  beforeEach(async () => {
    tmp = tempDir();
    runtime = await ProcessRuntime.create({
      graceMs: 2000,
      logCheckIntervalMs: 50,
      ...(mode === 'without cgroups' ? { cgroupRoot: join(tmp.dir, 'no-cgroups') } : {}),
    });
  });
  afterEach(async () => {
    await runtime.close({ graceMs: 200 });
    tmp.remove();
  });
}

function nextExit(rt: ProcessRuntime, instanceId: string): Promise<InstanceExit> {
  return new Promise((resolve) => {
    const off = rt.onExit((handle, exit) => {
      if (handle.instanceId !== instanceId) return;
      off();
      resolve(exit);
    });
  });
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe.each(modes)('ProcessRuntime: start and exit (%s)', (mode) => {
  useRuntime(mode);

  it('starts the command in its own process group with cwd, env and a fresh state directory', async () => {
    const launch = launchIn(
      tmp.dir,
      ['/bin/sh', '-c', 'echo "cwd=$(pwd) greeting=$GREETING"; exec sleep 30'],
      {
        env: { GREETING: 'hello' },
      },
    );
    const handle = await runtime.start(launch);
    expect(handle.pid).toBeGreaterThan(0);
    expect(handle.pgid).toBe(handle.pid);
    expect(handle.startTimeTicks).toBeGreaterThan(0);
    expect(statSync(launch.stateDir).isDirectory()).toBe(true);
    const group = await listGroupProcesses(handle.pgid);
    expect(group.map((p) => p.pid)).toContain(handle.pid);
    expect(group.find((p) => p.pid === handle.pid)?.pgrp).toBe(handle.pid);
    expect(await waitFor(() => readFileSync(handle.stdoutPath, 'utf8').includes('greeting=hello'))).toBe(
      true,
    );
    expect(readFileSync(handle.stdoutPath, 'utf8')).toContain(`cwd=${tmp.dir}`);
    expect(runtime.get(launch.instanceId)?.pid).toBe(handle.pid);
    expect(runtime.list().map((h) => h.instanceId)).toEqual([launch.instanceId]);
  });

  it('reports the exit code of a process that exits by itself through onExit', async () => {
    const launch = launchIn(tmp.dir, ['/bin/sh', '-c', 'sleep 0.2; exit 7']);
    const exited = nextExit(runtime, launch.instanceId);
    await runtime.start(launch);
    const exit = await exited;
    // A real exit code can only come from the child's exit event, never from polling /proc.
    expect(exit).toMatchObject({ code: 7, signal: null });
    expect(runtime.get(launch.instanceId)?.exit?.code).toBe(7);
    expect(await runtime.stats(launch.instanceId)).toBeUndefined();
  });

  it('notices an external SIGKILL at once, with the signal', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30']);
    const exited = nextExit(runtime, launch.instanceId);
    const handle = await runtime.start(launch);
    const killedAt = Date.now();
    process.kill(handle.pid, 'SIGKILL');
    const exit = await exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(exit.code).toBeNull();
    // Generous: only a missing exit event (falling back to slow polling) could take this long.
    expect(exit.at - killedAt).toBeLessThan(1000);
  });

  it('refuses to start a second process under an instance id that is still running', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30']);
    await runtime.start(launch);
    const err = await errorOf(runtime.start(launch));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
  });
});

describe.each(modes)('ProcessRuntime: stop and signals (%s)', (mode) => {
  useRuntime(mode);

  it('stops gracefully with SIGTERM when the process honours it', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30']);
    await runtime.start(launch);
    const exit = await runtime.stop(launch.instanceId, { graceMs: 5000 });
    expect(exit.signal).toBe('SIGTERM');
  });

  it('escalates to SIGKILL after the grace period for a process that ignores SIGTERM', async () => {
    const launch = launchIn(tmp.dir, script('ignore-term.sh'));
    const handle = await runtime.start(launch);
    expect(await waitFor(() => readFileSync(handle.stdoutPath, 'utf8').includes('ready'))).toBe(true);
    const started = Date.now();
    const exit = await runtime.stop(launch.instanceId, { graceMs: 300 });
    expect(exit.signal).toBe('SIGKILL');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(isAlive(handle.pid)).toBe(false);
  });

  it('kills children and grandchildren of the group on stop, leaving no live process in the group', async () => {
    const launch = launchIn(tmp.dir, script('spawn-tree.sh'));
    const handle = await runtime.start(launch);
    expect(await waitFor(async () => (await listGroupProcesses(handle.pgid)).length >= 5)).toBe(true);
    await runtime.stop(launch.instanceId, { graceMs: 1000 });
    expect(await listGroupProcesses(handle.pgid)).toEqual([]);
  });

  it('kills what is left of the group when the leader exits by itself', async () => {
    const launch = launchIn(tmp.dir, ['/bin/sh', '-c', 'sleep 300 & sleep 300 & sleep 0.3; exit 3']);
    const exited = nextExit(runtime, launch.instanceId);
    const handle = await runtime.start(launch);
    expect(await waitFor(async () => (await listGroupProcesses(handle.pgid)).length >= 3)).toBe(true);
    expect((await exited).code).toBe(3);
    expect(await waitFor(async () => (await listGroupProcesses(handle.pgid)).length === 0, 3000)).toBe(true);
  });

  it('delivers signals to the whole process group', async () => {
    const launch = launchIn(tmp.dir, [
      '/bin/sh',
      '-c',
      'trap "echo got-usr1" USR1; while :; do sleep 0.05; done',
    ]);
    const handle = await runtime.start(launch);
    await new Promise((r) => setTimeout(r, 100));
    runtime.signal(launch.instanceId, 'SIGUSR1');
    expect(await waitFor(() => readFileSync(handle.stdoutPath, 'utf8').includes('got-usr1'))).toBe(true);
  });

  it('stops every instance on close, and close is idempotent', async () => {
    const handles: InstanceHandle[] = [];
    for (let i = 0; i < 3; i++) handles.push(await runtime.start(launchIn(tmp.dir, ['sleep', '30'])));
    await Promise.all([runtime.close({ graceMs: 500 }), runtime.close()]);
    for (const h of handles) expect(await listGroupProcesses(h.pgid)).toEqual([]);
    const err = await errorOf(runtime.start(launchIn(tmp.dir, ['sleep', '30'])));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
  });

  it('stops an instance whose start was still in flight when close began', async () => {
    const starting = runtime.start(launchIn(tmp.dir, ['sleep', '30']));
    await runtime.close({ graceMs: 500 });
    const handle = await starting;
    expect(isAlive(handle.pid)).toBe(false);
    expect(await listGroupProcesses(handle.pgid)).toEqual([]);
  });

  it('throws UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE for an unknown instance id', async () => {
    expect(
      isUnderstudyError(await errorOf(runtime.stop('nope')), 'UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE'),
    ).toBe(true);
    expect(() => runtime.signal('nope', 'SIGTERM')).toThrow(
      expect.objectContaining({ code: 'UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE' }),
    );
  });
});

describe('ProcessRuntime: bad launches', () => {
  useRuntime();

  it('fails with UNDERSTUDY_ERR_RUNTIME_SPAWN naming the command and the instance when the command does not exist', async () => {
    const launch = launchIn(tmp.dir, ['understudy-no-such-command', '--flag'], { instanceId: 'kv-missing' });
    const err = await errorOf(runtime.start(launch));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
    expect((err as Error).message).toContain('understudy-no-such-command');
    expect((err as Error).message).toContain('kv-missing');
    expect(runtime.get('kv-missing')).toBeUndefined();
  });

  it('fails with UNDERSTUDY_ERR_RUNTIME_SPAWN when the command is not executable', async () => {
    const file = join(tmp.dir, 'not-executable.sh');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const err = await errorOf(runtime.start(launchIn(tmp.dir, [file], { instanceId: 'kv-noexec' })));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
    expect((err as Error).message).toContain('not an executable');
    expect((err as Error).message).toContain('kv-noexec');
  });

  it('fails with UNDERSTUDY_ERR_RUNTIME_SPAWN naming the directory when cwd is missing', async () => {
    const cwd = join(tmp.dir, 'no-such-dir');
    const err = await errorOf(
      runtime.start(launchIn(tmp.dir, ['sleep', '30'], { cwd, instanceId: 'kv-nocwd' })),
    );
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
    expect((err as Error).message).toContain(cwd);
    expect((err as Error).message).toContain('kv-nocwd');
  });

  it('fails with UNDERSTUDY_ERR_STATE_DIR when the state directory cannot be created', async () => {
    const file = join(tmp.dir, 'a-file');
    writeFileSync(file, 'x');
    const stateDir = join(file, 'state');
    const err = await errorOf(runtime.start(launchIn(tmp.dir, ['sleep', '30'], { stateDir })));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_STATE_DIR')).toBe(true);
    expect((err as Error).message).toContain(stateDir);
    expect(runtime.list()).toEqual([]);
  });

  it('fails with UNDERSTUDY_ERR_STATE_DIR when the state directory exists but is not writable', async () => {
    // /proc exists and refuses new files even to root; for other users a 0555 directory does too.
    const stateDir = process.getuid?.() === 0 ? '/proc' : join(tmp.dir, 'read-only');
    if (stateDir !== '/proc') {
      writeFileSync(join(tmp.dir, 'placeholder'), '');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(stateDir, { mode: 0o555 });
    }
    const err = await errorOf(runtime.start(launchIn(tmp.dir, ['sleep', '30'], { stateDir })));
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_STATE_DIR')).toBe(true);
    expect(runtime.list()).toEqual([]);
  });
});

describe('ProcessRuntime: logs', () => {
  useRuntime();

  it('appends stdout and stderr to separate files in the log directory', async () => {
    const launch = launchIn(tmp.dir, ['/bin/sh', '-c', 'echo to-out; echo to-err >&2']);
    const exited = nextExit(runtime, launch.instanceId);
    const handle = await runtime.start(launch);
    await exited;
    expect(handle.stdoutPath).toBe(join(launch.logDir, `${launch.instanceId}.out.log`));
    expect(handle.stderrPath).toBe(join(launch.logDir, `${launch.instanceId}.err.log`));
    expect(readFileSync(handle.stdoutPath, 'utf8')).toBe('to-out\n');
    expect(readFileSync(handle.stderrPath, 'utf8')).toBe('to-err\n');
  });

  it('keeps a log within its bound by rotating to .1', async () => {
    const bound = 20_000;
    const launch = launchIn(tmp.dir, script('chatty.sh', '100000'), { logMaxBytes: bound });
    const handle = await runtime.start(launch);
    const rotated = `${handle.stdoutPath}.1`;
    expect(await waitFor(() => existsSync(rotated))).toBe(true);
    // The bound is checked on a timer (50 ms here): after a check, both files are within it.
    await new Promise((r) => setTimeout(r, 200));
    expect(statSync(handle.stdoutPath).size).toBeLessThanOrEqual(bound);
    expect(statSync(rotated).size).toBeLessThanOrEqual(bound);
    expect(statSync(rotated).size).toBeGreaterThan(0);
    // The process keeps writing to the truncated file (O_APPEND): new lines appear at its start.
    expect(await waitFor(() => readFileSync(handle.stdoutPath, 'utf8').includes('more'))).toBe(true);
    const stats = await runtime.stats(launch.instanceId);
    expect(stats?.logDroppedBytes).toBeGreaterThan(0);
  });
});

describe.each(modes)('ProcessRuntime: stats (%s)', (mode) => {
  useRuntime(mode);

  it('reports nonzero CPU for a busy process and plausible RSS and io for the group', async () => {
    const launch = launchIn(tmp.dir, script('burn-cpu.sh'));
    await runtime.start(launch);
    await new Promise((r) => setTimeout(r, 300));
    await runtime.stats(launch.instanceId);
    await new Promise((r) => setTimeout(r, 500));
    const stats = await runtime.stats(launch.instanceId);
    expect(stats).toBeDefined();
    expect(stats?.cpuPercent).toBeGreaterThan(10);
    expect(stats?.cpuPercent).toBeLessThan(250);
    // A shell's resident set: more than 100 KiB, less than 100 MiB.
    expect(stats?.rssBytes).toBeGreaterThan(100 * 1024);
    expect(stats?.rssBytes).toBeLessThan(100 * 1024 * 1024);
    expect(stats?.processCount).toBe(1);
    expect(stats?.ioAvailable).toBe(true);
  });

  it('reports near-zero CPU for an idle process', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30']);
    await runtime.start(launch);
    await runtime.stats(launch.instanceId);
    await new Promise((r) => setTimeout(r, 300));
    const stats = await runtime.stats(launch.instanceId);
    expect(stats?.cpuPercent).toBeLessThan(5);
  });

  it('counts bytes the instance writes to storage', async () => {
    // write_bytes counts block-device writes: on a tmpfs temp dir there are none, so write under the repo then.
    const onTmpfs =
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' '))
        .filter(([, mount]) => mount !== undefined && tmp.dir.startsWith(mount))
        .sort((a, b) => (b[1]?.length ?? 0) - (a[1]?.length ?? 0))[0]?.[2] === 'tmpfs';
    const work = onTmpfs ? tempDirIn(process.cwd()) : tmp;
    try {
      const out = join(work.dir, 'written.bin');
      const loop = `i=0; while [ $i -lt 500 ]; do printf "%01000d" 0 >> ${out}; i=$((i+1)); done; echo done; while :; do sleep 1; done`;
      const launch = launchIn(tmp.dir, ['/bin/sh', '-c', loop]);
      const handle = await runtime.start(launch);
      expect(await waitFor(() => readFileSync(handle.stdoutPath, 'utf8').includes('done'))).toBe(true);
      const stats = await runtime.stats(launch.instanceId);
      expect(stats?.ioAvailable).toBe(true);
      expect(stats?.writeBytes).toBeGreaterThanOrEqual(400_000);
    } finally {
      if (work !== tmp) work.remove();
    }
  });
});
