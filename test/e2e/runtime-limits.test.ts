import { existsSync, mkdirSync, readFileSync, rmdirSync, utimesSync } from 'node:fs';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../../src/errors/index.js';
import { ProcessRuntime, type InstanceExit } from '../../src/runtime/index.js';
import { fixtures, isAlive, launchIn, script, tempDir, waitFor } from './fixtures/runtime/helpers.js';

const probe = await ProcessRuntime.create();
const support = probe.limitsSupport();
await probe.close();

let tmp: { dir: string; remove: () => void };
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.remove();
});

/** CPU seconds (utime+stime) of one process. */
function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Cores used by `pid` over `ms`, measured independently of the runtime's own stats. */
async function coresUsed(pid: number, ms = 1500): Promise<number> {
  const before = cpuSeconds(pid);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (cpuSeconds(pid) - before) / ((performance.now() - started) / 1000);
}

/** The directory of `pid`'s cgroup in a v1 hierarchy (`controller`) or on v2, from /proc/<pid>/cgroup. */
function cgroupDir(pid: number, controller: 'cpu' | 'memory'): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  if (support.supported && support.mechanism === 'cgroup-v2')
    return join('/sys/fs/cgroup', lines.find((l) => l.startsWith('0::'))?.slice(3) ?? '');
  const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller)) ?? '';
  const mount = existsSync(`/sys/fs/cgroup/${controller}`)
    ? `/sys/fs/cgroup/${controller}`
    : '/sys/fs/cgroup/cpu,cpuacct';
  return join(mount, line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
}

function memoryLimitFile(pid: number): string {
  const dir = cgroupDir(pid, 'memory');
  return support.supported && support.mechanism === 'cgroup-v2'
    ? join(dir, 'memory.max')
    : join(dir, 'memory.limit_in_bytes');
}

describe('ProcessRuntime limits where cgroups are writable', () => {
  if (!support.supported) {
    it.skip(`skipped: limitsSupport() says limits are unsupported on this host (${support.reason})`, () =>
      undefined);
    return;
  }
  let runtime: ProcessRuntime;
  beforeEach(async () => {
    runtime = await ProcessRuntime.create({ graceMs: 500 });
  });
  afterEach(async () => {
    await runtime.close({ graceMs: 200 });
  });

  it('holds a CPU-burning instance limited to 0.2 cores to about that', async () => {
    const launch = launchIn(tmp.dir, script('burn-cpu.sh'), { resources: { cpu: 0.2 } });
    const handle = await runtime.start(launch);
    expect(handle.limits.cpu).toBeCloseTo(0.2, 5);
    expect(readFileSync(`/proc/${handle.pid}/cgroup`, 'utf8')).toContain('/understudy/');
    const cores = await coresUsed(handle.pid);
    expect(cores).toBeGreaterThan(0.05);
    expect(cores).toBeLessThan(0.5);
  });

  it('applies a CPU limit to a running instance and lifts it again', async () => {
    const launch = launchIn(tmp.dir, script('burn-cpu.sh'));
    const handle = await runtime.start(launch);
    expect(handle.limits).toEqual({});
    await runtime.setResources(launch.instanceId, { cpu: 0.2 });
    expect(runtime.get(launch.instanceId)?.limits.cpu).toBeCloseTo(0.2, 5);
    expect(await coresUsed(handle.pid)).toBeLessThan(0.5);
    await runtime.setResources(launch.instanceId, {});
    expect(await runtime.readLimits(launch.instanceId)).toEqual({});
  });

  it('sets the memory limit the kernel reads back, and resizes it while running', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30'], { resources: { memoryBytes: 64 * 1024 * 1024 } });
    const handle = await runtime.start(launch);
    const file = memoryLimitFile(handle.pid);
    expect(Number(readFileSync(file, 'utf8'))).toBe(64 * 1024 * 1024);
    expect(handle.limits.memoryBytes).toBe(64 * 1024 * 1024);
    await runtime.setResources(launch.instanceId, { memoryBytes: 96 * 1024 * 1024, cpu: 0.5 });
    expect(Number(readFileSync(file, 'utf8'))).toBe(96 * 1024 * 1024);
    expect(await runtime.readLimits(launch.instanceId)).toEqual({ memoryBytes: 96 * 1024 * 1024, cpu: 0.5 });
  });

  it('enforces the memory limit: an instance allocating past it is killed, under it completes', async () => {
    const exits = new Map<string, InstanceExit>();
    runtime.onExit((h, e) => exits.set(h.instanceId, e));
    const over = launchIn(tmp.dir, ['node', join(fixtures, 'allocate.mjs'), '256'], {
      resources: { memoryBytes: 128 * 1024 * 1024 },
    });
    const under = launchIn(tmp.dir, ['node', join(fixtures, 'allocate.mjs'), '16'], {
      resources: { memoryBytes: 128 * 1024 * 1024 },
    });
    const overHandle = await runtime.start(over);
    const underHandle = await runtime.start(under);
    expect(await waitFor(() => exits.has(over.instanceId) && exits.has(under.instanceId), 20_000)).toBe(true);
    expect(exits.get(over.instanceId)?.signal).toBe('SIGKILL');
    expect(readFileSync(overHandle.stdoutPath, 'utf8')).not.toContain('allocated');
    expect(exits.get(under.instanceId)).toMatchObject({ code: 0, signal: null });
    expect(readFileSync(underHandle.stdoutPath, 'utf8')).toContain('allocated 16 MiB');
  });

  it('removes the instance cgroup after the instance exits', async () => {
    const launch = launchIn(tmp.dir, ['sleep', '30'], { resources: { cpu: 0.5 } });
    const handle = await runtime.start(launch);
    const dirs = [cgroupDir(handle.pid, 'cpu'), cgroupDir(handle.pid, 'memory')];
    for (const d of dirs) expect(existsSync(d)).toBe(true);
    await runtime.stop(launch.instanceId);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
  });

  it('also kills processes that left the instance process group with setsid, through its cgroup', async () => {
    const pidFile = join(tmp.dir, 'escaped.pid');
    const launch = launchIn(tmp.dir, [
      '/bin/sh',
      '-c',
      `setsid sleep 300 & echo $! > ${pidFile}; exec sleep 30`,
    ]);
    const handle = await runtime.start(launch);
    expect(await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '')).toBe(
      true,
    );
    const escaped = Number(readFileSync(pidFile, 'utf8'));
    expect(
      await waitFor(
        () =>
          isAlive(escaped) &&
          readFileSync(`/proc/${escaped}/stat`, 'utf8').split(') ')[1]?.split(' ')[2] !== String(handle.pgid),
      ),
    ).toBe(true);
    await runtime.stop(launch.instanceId);
    expect(await waitFor(() => !isAlive(escaped), 2000)).toBe(true);
  });

  it('sweeps instance cgroups left empty over a minute ago, and leaves fresh ones', async () => {
    const handle = await runtime.start(launchIn(tmp.dir, ['sleep', '30'], { resources: { cpu: 0.5 } }));
    const parent = dirname(cgroupDir(handle.pid, 'cpu'));
    const stale = join(parent, `stale-test.${process.pid}`);
    const fresh = join(parent, `fresh-test.${process.pid}`);
    mkdirSync(stale);
    mkdirSync(fresh);
    try {
      const old = new Date(Date.now() - 5 * 60_000);
      utimesSync(stale, old, old);
      const second = await ProcessRuntime.create();
      await second.close();
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(fresh)).toBe(true);
      expect(existsSync(cgroupDir(handle.pid, 'cpu'))).toBe(true);
    } finally {
      for (const d of [stale, fresh]) if (existsSync(d)) rmdirSync(d);
    }
  });

  it('rejects invalid limit values with UNDERSTUDY_ERR_RUNTIME_LIMITS and starts nothing', async () => {
    const err = await runtime
      .start(launchIn(tmp.dir, ['sleep', '30'], { resources: { cpu: -1 } }))
      .catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_LIMITS')).toBe(true);
    expect(runtime.list()).toEqual([]);
    const running = launchIn(tmp.dir, ['sleep', '30']);
    await runtime.start(running);
    const err2 = await runtime
      .setResources(running.instanceId, { memoryBytes: 1.5 })
      .catch((e: unknown) => e);
    expect(isUnderstudyError(err2, 'UNDERSTUDY_ERR_RUNTIME_LIMITS')).toBe(true);
  });
});

describe('ProcessRuntime limits where cgroups are not available', () => {
  it('says limits are unsupported, with a reason, and refuses to set them — never pretends', async () => {
    const runtime = await ProcessRuntime.create({ cgroupRoot: join(tmp.dir, 'no-cgroups'), graceMs: 200 });
    try {
      const limits = runtime.limitsSupport();
      expect(limits.supported).toBe(false);
      expect(limits.supported ? '' : limits.reason).toContain('no-cgroups');
      const launch = launchIn(tmp.dir, ['sleep', '30'], {
        resources: { cpu: 0.2, memoryBytes: 64 * 1024 * 1024 },
      });
      const handle = await runtime.start(launch);
      // Started, but the handle does not claim limits that nothing enforces.
      expect(handle.limits).toEqual({});
      const err = await runtime.setResources(launch.instanceId, { cpu: 0.5 }).catch((e: unknown) => e);
      expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_LIMITS')).toBe(true);
      expect((err as Error).message).toContain('unsupported');
      expect(await runtime.readLimits(launch.instanceId)).toBeUndefined();
    } finally {
      await runtime.close();
    }
  });
});
