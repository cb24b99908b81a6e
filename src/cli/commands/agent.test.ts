import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitCode } from '../exit-codes.js';
import { MAX_RESTART_GRACE_MS, runAgent } from './agent.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** runAgent with a bad `--restart-grace`: its exit code and what it printed. */
async function refused(restartGraceMs: number): Promise<{ code: number; err: string; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-agent-cmd-'));
  dirs.push(dir);
  let err = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
  const code = await runAgent({ store: join(dir, 'data'), host: 'h1', leaveRunning: true, restartGraceMs });
  return { code, err, files: readdirSync(dir) };
}

describe('understudy agent --restart-grace', () => {
  it('refuses a window longer than the bound, saying which option and the range, before touching the store', async () => {
    const r = await refused(MAX_RESTART_GRACE_MS + 1);
    expect(r.code).toBe(ExitCode.Usage);
    expect(r.err).toContain('--restart-grace 600001 ms');
    expect(r.err).toContain('0 (none) to 600 s');
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.files).toEqual([]);
  });

  it('refuses a negative or fractional window', async () => {
    expect((await refused(-1)).err).toContain('--restart-grace -1 ms');
    expect((await refused(0.5)).code).toBe(ExitCode.Usage);
  });
});
