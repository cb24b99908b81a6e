import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../errors/index.js';
import { CgroupLimiter, parseProcCgroup } from './cgroup-limiter.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'understudy-cg-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('parseProcCgroup', () => {
  it('maps every v1 controller, including co-mounted ones, and the v2 entry', () => {
    const map = parseProcCgroup(
      '4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/user.slice/u\n',
    );
    expect(map.get('memory')).toBe('/process_api/abc');
    expect(map.get('cpu')).toBe('/');
    expect(map.get('cpuacct')).toBe('/');
    expect(map.get('name=systemd')).toBe('/x');
    expect(map.get('')).toBe('/user.slice/u');
  });
});

describe('CgroupLimiter.detect', () => {
  it('reports unsupported, naming the root, where no hierarchy is mounted', async () => {
    const limiter = await CgroupLimiter.detect({ root, parentName: 'understudy' });
    expect(limiter.support.supported).toBe(false);
    expect(limiter.support.supported ? '' : limiter.support.reason).toContain(root);
    const err = await limiter.create('kv-1').catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_LIMITS')).toBe(true);
  });

  it('reports unsupported, naming the controller, when a v2 hierarchy lacks the memory controller', async () => {
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu io pids\n');
    const limiter = await CgroupLimiter.detect({ root, parentName: 'understudy' });
    expect(limiter.support.supported ? '' : limiter.support.reason).toContain('memory');
  });

  it('reports unsupported where a v1 memory hierarchy is missing', async () => {
    mkdirSync(join(root, 'cpu'));
    writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
    const limiter = await CgroupLimiter.detect({ root, parentName: 'understudy' });
    expect(limiter.support.supported ? '' : limiter.support.reason).toMatch(/v1 memory controller/);
  });
});

describe('CgroupLimiter on a cgroup v2 layout', () => {
  // A directory shaped like a delegated v2 hierarchy. The kernel's own behaviour (enforcement, rounding) is not
  // simulated: this checks the v2 detection steps and the cpu.max / memory.max formats only.
  it('detects v2, writes cpu.max and memory.max in the kernel format, and reads them back', async () => {
    const own =
      readFileSync('/proc/self/cgroup', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('0::'))
        ?.slice(3) ?? '/';
    const base = join(root, own);
    mkdirSync(join(base, 'understudy'), { recursive: true });
    writeFileSync(join(base, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(join(base, 'cgroup.subtree_control'), '');
    writeFileSync(join(base, 'understudy', 'cgroup.subtree_control'), 'cpu memory\n');
    const limiter = await CgroupLimiter.detect({ root, parentName: 'understudy' });
    expect(limiter.support).toEqual({ supported: true, mechanism: 'cgroup-v2' });
    expect(readFileSync(join(base, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu +memory');

    const cg = await limiter.create('kv/1');
    expect(cg.version).toBe(2);
    expect(cg.dirs).toEqual([cg.cpuDir]);
    expect(cg.cpuDir.startsWith(join(base, 'understudy', 'kv_1.'))).toBe(true);
    writeFileSync(join(cg.cpuDir, 'cpu.max'), 'max 100000\n');
    writeFileSync(join(cg.memoryDir, 'memory.max'), 'max\n');
    expect(await limiter.read(cg)).toEqual({});
    expect(await limiter.apply(cg, { cpu: 0.25, memoryBytes: 64 * 1024 * 1024 })).toEqual({
      cpu: 0.25,
      memoryBytes: 64 * 1024 * 1024,
    });
    expect(readFileSync(join(cg.cpuDir, 'cpu.max'), 'utf8')).toBe('25000 100000');
    expect(readFileSync(join(cg.memoryDir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
    expect(await limiter.apply(cg, {})).toEqual({});
    expect(readFileSync(join(cg.cpuDir, 'cpu.max'), 'utf8')).toBe('max 100000');
  });
});
