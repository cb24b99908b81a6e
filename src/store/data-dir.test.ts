import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { expectCode } from './contract-support.js';
import { ensurePrivateFile, prepareDataDir } from './data-dir.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'understudy-datadir-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('prepareDataDir', () => {
  it('creates a missing data directory readable by its owner only', () => {
    const dir = join(root, 'a', 'data');
    expect(prepareDataDir(dir)).toEqual({ created: true });
    expect(modeOf(dir)).toBe(0o700);
  });

  it('tightens a data directory an older version left readable by others, and says from what', () => {
    const dir = join(root, 'old');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    expect(prepareDataDir(dir)).toEqual({ created: false, tightenedFrom: 0o755 });
    expect(modeOf(dir)).toBe(0o700);
  });

  it('leaves an owner-only data directory as it is', () => {
    const dir = join(root, 'fine');
    mkdirSync(dir, { mode: 0o700 });
    expect(prepareDataDir(dir)).toEqual({ created: false });
    expect(modeOf(dir)).toBe(0o700);
  });

  it('refuses a data directory path that is a file', async () => {
    const file = join(root, 'f');
    writeFileSync(file, '');
    await expectCode(
      Promise.resolve().then(() => prepareDataDir(file)),
      ErrorCode.StateDir,
    );
  });
});

describe('ensurePrivateFile', () => {
  it('creates a file 0600 and tightens an existing 0644 one', () => {
    const fresh = join(root, 'fresh');
    ensurePrivateFile(fresh);
    expect(modeOf(fresh)).toBe(0o600);
    const old = join(root, 'old');
    writeFileSync(old, 'x', { mode: 0o644 });
    ensurePrivateFile(old, true);
    expect(modeOf(old)).toBe(0o600);
    ensurePrivateFile(join(root, 'missing'), true);
    expect(() => statSync(join(root, 'missing'))).toThrow();
  });
});
