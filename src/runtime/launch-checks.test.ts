import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../errors/index.js';
import { assertCwd, ensureWritableDir, resolveCommand } from './launch-checks.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-launch-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('resolveCommand', () => {
  it('finds a bare name through PATH and a relative path against cwd', async () => {
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool'), 0o755);
    expect(await resolveCommand('i', 'tool', '/', `/nonexistent:${dir}`)).toBe(join(dir, 'tool'));
    expect(await resolveCommand('i', './tool', dir, '')).toBe(join(dir, 'tool'));
  });

  it('skips a non-executable match in PATH and reports the search path when nothing is found', async () => {
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool'), 0o644);
    const err = await resolveCommand('kv-1', 'tool', '/', dir).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
    expect((err as Error).message).toContain(dir);
    expect((err as Error).message).toContain('kv-1');
  });

  it('rejects a directory given as the command', async () => {
    const err = await resolveCommand('i', dir, '/', '').catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
  });
});

describe('assertCwd and ensureWritableDir', () => {
  it('rejects a cwd that is a file', async () => {
    writeFileSync(join(dir, 'f'), '');
    const err = await assertCwd('i', 'sleep', join(dir, 'f')).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_RUNTIME_SPAWN')).toBe(true);
  });

  it('creates a missing state directory with its parents and leaves no probe file behind', async () => {
    const state = join(dir, 'a', 'b');
    await ensureWritableDir('i', state);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(state)).toEqual([]);
  });
});
