import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureToken, readToken } from './token.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'understudy-token-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the API token file', () => {
  it('is created 0600 in a data directory it creates 0700', () => {
    const dataDir = join(scratch(), 'data');
    const token = ensureToken(dataDir);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(readToken(dataDir)).toBe(token);
  });

  it('is kept across starts, and tightened to 0600 when others could read it', () => {
    const dataDir = scratch();
    const token = ensureToken(dataDir);
    chmodSync(join(dataDir, 'token'), 0o644);
    expect(ensureToken(dataDir)).toBe(token);
    expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
  });

  it('is replaced by a fresh 0600 one when its content is not a token, leaving no temporary file', () => {
    const dataDir = scratch();
    writeFileSync(join(dataDir, 'token'), 'half a tok', { mode: 0o644 });
    chmodSync(join(dataDir, 'token'), 0o644);
    const token = ensureToken(dataDir);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir)).toEqual(['token']);
  });
});
