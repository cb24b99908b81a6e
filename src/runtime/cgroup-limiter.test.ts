import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    const map = parseProcCgroup('4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/user.slice/u\n');
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
