import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startEmbedded, type Embedded } from '../../src/cli/embedded.js';
import { repoRoot, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-perms-'));
let running: Embedded | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `name mode` of the files (or the directories) directly in `dir`. */
function modesIn(dir: string, kind: 'files' | 'dirs'): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => (kind === 'files' ? e.isFile() : e.isDirectory()))
    .map((e) => `${e.name} ${modeOf(join(dir, e.name))}`);
}
const modeOf = (path: string): string => (statSync(path).mode & 0o777).toString(8);

function specFile(name: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    echo: { count: 1, mode: warm }
`,
  );
  return file;
}

async function start(name: string, dataDir: string): Promise<Embedded> {
  running = await startEmbedded({ specFile: specFile(name), dataDir });
  const control = running.control;
  await waitFor(
    () => control.instances().filter((i) => i.phase === 'running').length === 2,
    15_000,
    () => JSON.stringify(control.instances().map((i) => [i.id, i.role, i.phase])),
  );
  return running;
}

describe('data directory permissions (real processes)', { timeout: 60_000 }, () => {
  it('keeps the data directory 0700 and the store, lock, logs and state directories owner-only', async () => {
    const dataDir = join(work, 'fresh');
    const up = await start('fresh', dataDir);
    expect(modeOf(dataDir)).toBe('700');
    for (const f of ['store.db', 'store.db-wal', 'store.db-shm', 'control.lock'])
      expect(`${f} ${modeOf(join(dataDir, f))}`).toBe(`${f} 600`);
    expect(modeOf(join(dataDir, 'logs'))).toBe('700');
    const logs = readdirSync(join(dataDir, 'logs'));
    expect(logs.length).toBeGreaterThan(0);
    for (const f of logs) expect(`${f} ${modeOf(join(dataDir, 'logs', f))}`).toBe(`${f} 600`);
    expect(modeOf(join(dataDir, 'state'))).toBe('700');
    // Every file the control process writes directly into the data directory (store, lock, API endpoint
    // and token) is 0600, every directory it makes there 0700, the echo's sync journal included.
    expect(modesIn(dataDir, 'files').filter((m) => !m.endsWith(' 600'))).toEqual([]);
    expect(modesIn(dataDir, 'dirs').filter((m) => !m.endsWith(' 700'))).toEqual([]);
    expect(modesIn(join(dataDir, 'state'), 'dirs')).toContain('.kv-2.understudy-sync 700');
    expect(modesIn(join(dataDir, 'state'), 'dirs').filter((m) => !m.endsWith(' 700'))).toEqual([]);
    for (const inst of up.control.instances())
      expect(`${inst.id} ${modeOf(inst.stateDir)}`).toBe(`${inst.id} 700`);
  });

  it('tightens a data directory and store left readable by others by an older version, with a notice', async () => {
    const dataDir = join(work, 'old');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'store.db'), '', { mode: 0o644 });
    chmodSync(join(dataDir, 'store.db'), 0o644);
    const up = await start('old', dataDir);
    expect(modeOf(dataDir)).toBe('700');
    expect(modeOf(join(dataDir, 'store.db'))).toBe('600');
    const notices = (await up.control.decisions.list()).filter((d) => d.kind === 'notice');
    expect(notices.map((d) => d.why)).toEqual([expect.stringContaining('it was 0755')]);
  });
});
