import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listGroupProcesses,
  ProcessRuntime,
  type InstanceExit,
  type InstanceHandle,
} from '../../src/runtime/index.js';
import { fixtures, isAlive, launchIn, tempDir, waitFor } from './fixtures/runtime/helpers.js';

let tmp: { dir: string; remove: () => void };
const runtimes: ProcessRuntime[] = [];
const strays: number[] = [];

async function runtime(): Promise<ProcessRuntime> {
  const rt = await ProcessRuntime.create({ graceMs: 500, adoptPollMs: 50, logCheckIntervalMs: 50 });
  runtimes.push(rt);
  return rt;
}

beforeEach(() => {
  tmp = tempDir();
});

afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close({ graceMs: 200 });
  for (const pgid of strays.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
  tmp.remove();
});

function exitOf(rt: ProcessRuntime, instanceId: string): Promise<InstanceExit> {
  return new Promise((resolve) => {
    const off = rt.onExit((h, e) => {
      if (h.instanceId === instanceId) {
        off();
        resolve(e);
      }
    });
  });
}

/** Runs the stand-in control process, which starts one instance and then crashes or detaches; returns the handle. */
async function startFromAnotherControlProcess(
  mode: 'crash' | 'detach',
  logMaxBytes: number,
): Promise<InstanceHandle> {
  const control = spawn(
    process.execPath,
    ['--import', 'tsx', join(fixtures, 'control-process.ts'), tmp.dir, mode, String(logMaxBytes)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  control.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    control.once('exit', (c, s) => resolve([c, s])),
  );
  expect(mode === 'crash' ? signal : code).toBe(mode === 'crash' ? 'SIGKILL' : 0);
  const handle = JSON.parse(out.trim()) as InstanceHandle;
  strays.push(handle.pgid);
  return handle;
}

describe('ProcessRuntime.adopt', () => {
  it('adopts an instance detached by another runtime, keeps it running, and detects its later exit', async () => {
    const first = await runtime();
    const launch = launchIn(tmp.dir, ['sleep', '30']);
    const handle = await first.start(launch);
    await first.close({ leaveRunning: true });
    expect(isAlive(handle.pid)).toBe(true);

    const second = await runtime();
    expect(await second.adopt(handle)).toBe(true);
    expect(second.get(launch.instanceId)?.pid).toBe(handle.pid);
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(handle.pid)).toBe(true);
    expect((await second.stats(launch.instanceId))?.processCount).toBe(1);

    const exited = exitOf(second, launch.instanceId);
    process.kill(handle.pid, 'SIGKILL');
    const exit = await exited;
    // Not our child: the status went to its parent, so it is unknown here — but the exit itself is seen.
    expect(exit).toMatchObject({ code: null, signal: null });
    expect(second.get(launch.instanceId)?.exit).toBeDefined();
  });

  it('refuses a pid whose start time, process group or existence does not match the handle', async () => {
    const first = await runtime();
    const handle = await first.start(launchIn(tmp.dir, ['sleep', '30']));
    const second = await runtime();
    const startTimeTicks = handle.startTimeTicks ?? 0;
    expect(
      await second.adopt({ ...handle, instanceId: 'recycled', startTimeTicks: startTimeTicks + 1 }),
    ).toBe(false);
    expect(await second.adopt({ ...handle, instanceId: 'other-group', pgid: handle.pgid + 1 })).toBe(false);
    const { startTimeTicks: _dropped, ...withoutStart } = handle;
    expect(await second.adopt({ ...withoutStart, instanceId: 'unverifiable' })).toBe(false);
    const gone = await first.start(launchIn(tmp.dir, ['true']));
    await first.stop(gone.instanceId);
    expect(await second.adopt({ ...gone, instanceId: 'gone' })).toBe(false);
    expect(second.list()).toEqual([]);
  });

  it('adopts an instance whose control process crashed, with its logs still written and bounded, and stops its whole group', async () => {
    const bound = 2000;
    const handle = await startFromAnotherControlProcess('crash', bound);
    expect(isAlive(handle.pid)).toBe(true);

    const rt = await runtime();
    expect(await rt.adopt(handle)).toBe(true);
    // The instance writes its log file itself, so output continues after its control process died.
    const sizeNow = statSync(handle.stdoutPath).size;
    expect(
      await waitFor(() => existsSync(`${handle.stdoutPath}.1`) || statSync(handle.stdoutPath).size > sizeNow),
    ).toBe(true);
    expect(await waitFor(() => existsSync(`${handle.stdoutPath}.1`))).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(statSync(handle.stdoutPath).size).toBeLessThanOrEqual(bound);
    expect(readFileSync(`${handle.stdoutPath}.1`, 'utf8')).toContain('tick');

    const limits = rt.limitsSupport();
    if (limits.supported) {
      // The adopted instance's cgroup is found again from /proc/<pid>/cgroup, so it can still be resized.
      expect(rt.get(handle.instanceId)?.limits.cpu).toBeCloseTo(0.5, 5);
      await rt.setResources(handle.instanceId, { cpu: 0.25 });
      expect((await rt.readLimits(handle.instanceId))?.cpu).toBeCloseTo(0.25, 5);
    }

    expect((await listGroupProcesses(handle.pgid)).length).toBeGreaterThanOrEqual(2);
    const exit = await rt.stop(handle.instanceId, { graceMs: 1000 });
    expect(exit.code).toBeNull();
    expect(await listGroupProcesses(handle.pgid)).toEqual([]);
  });

  it('adopts an instance whose control process detached cleanly and stops it on close', async () => {
    const handle = await startFromAnotherControlProcess('detach', 1_000_000);
    expect(isAlive(handle.pid)).toBe(true);
    const rt = await runtime();
    expect(await rt.adopt(handle)).toBe(true);
    await rt.close({ graceMs: 500 });
    expect(await listGroupProcesses(handle.pgid)).toEqual([]);
  });
});
