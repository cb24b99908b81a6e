import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLogForAppend, rotateIfOver } from './log-files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-logs-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('openLogForAppend', () => {
  it('creates the log directory 0700 and the log file 0600, and tightens an older 0640 file', async () => {
    const file = join(dir, 'logs', 'kv-1.out.log');
    const log = await openLogForAppend(file);
    await log.close();
    expect(statSync(join(dir, 'logs')).mode & 0o777).toBe(0o700);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    const old = join(dir, 'old.log');
    writeFileSync(old, 'x', { mode: 0o640 });
    await (await openLogForAppend(old)).close();
    expect((statSync(old).mode & 0o777).toString(8)).toBe('600');
  });

  it('writes the rotated copy 0600', async () => {
    const file = join(dir, 'r.log');
    writeFileSync(file, 'x'.repeat(200), { mode: 0o600 });
    await rotateIfOver(file, 100);
    expect((statSync(`${file}.1`).mode & 0o777).toString(8)).toBe('600');
  });
});

describe('rotateIfOver', () => {
  it('leaves a file within the bound alone', async () => {
    const file = join(dir, 'a.log');
    writeFileSync(file, 'x'.repeat(100));
    expect(await rotateIfOver(file, 100)).toEqual({ rotated: false, droppedBytes: 0 });
    expect(existsSync(`${file}.1`)).toBe(false);
  });

  it('moves an oversized file to .1, keeping its last maxBytes and counting the rest as dropped', async () => {
    const file = join(dir, 'a.log');
    writeFileSync(file, 'a'.repeat(150) + 'b'.repeat(100));
    expect(await rotateIfOver(file, 100)).toEqual({ rotated: true, droppedBytes: 150 });
    expect(statSync(file).size).toBe(0);
    expect(readFileSync(`${file}.1`, 'utf8')).toBe('b'.repeat(100));
  });

  it('replaces an earlier .1', async () => {
    const file = join(dir, 'a.log');
    writeFileSync(`${file}.1`, 'old');
    writeFileSync(file, 'new!'.repeat(10));
    await rotateIfOver(file, 39);
    expect(readFileSync(`${file}.1`, 'utf8')).toBe('ew!' + 'new!'.repeat(9));
  });

  it('lets an O_APPEND writer continue at the start of the truncated file', async () => {
    const file = join(dir, 'sub', 'a.log');
    const log = await openLogForAppend(file);
    try {
      appendFileSync(log.fd, 'z'.repeat(500));
      await rotateIfOver(file, 200);
      appendFileSync(log.fd, 'after');
      expect(readFileSync(file, 'utf8')).toBe('after');
    } finally {
      await log.close();
    }
  });

  it('treats a missing file as nothing to rotate', async () => {
    expect(await rotateIfOver(join(dir, 'missing.log'), 10)).toEqual({ rotated: false, droppedBytes: 0 });
  });
});
