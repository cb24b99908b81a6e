import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStateStore, STORE_DB_FILE } from '../../src/store/index.js';

const writerScript = fileURLToPath(new URL('./fixtures/store/store-writer.ts', import.meta.url));

interface Committed {
  revision: number;
  key: string;
  length: number;
}

/** Starts the writer, lets it write for `runMs` after it is ready, SIGKILLs it; returns what it reported committed. */
async function runAndKill(dataDir: string, firstIndex: number, runMs: number): Promise<Committed[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, dataDir, String(firstIndex)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 15_000;
    while (!/^ready\n\d/.test(stdout)) {
      if (child.exitCode !== null) throw new Error(`writer exited early: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`writer never started writing: ${stderr}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, runMs));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  expect(child.signalCode).toBe('SIGKILL');
  // Only complete lines: the process may die in the middle of printing one.
  const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((line) => /^\d+ /.test(line))
    .map((line) => {
      const [revision, key, length] = line.split(' ');
      return { revision: Number(revision), key: key as string, length: Number(length) };
    });
}

describe('store survives kill -9 of a writing process', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'understudy-crash-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the database intact and every write the killed process saw committed, over several crashes', async () => {
    let reportedTotal = 0;
    let lastRevision = 0;
    for (let round = 0; round < 4; round++) {
      const runMs = 30 + Math.floor(Math.random() * 300);
      const committed = await runAndKill(dataDir, round * 10_000_000, runMs);
      expect(committed.length, `round ${round} reported no write`).toBeGreaterThan(0);
      reportedTotal += committed.length;

      const db = new Database(join(dataDir, STORE_DB_FILE));
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      } finally {
        db.close();
      }

      const store = await SqliteStateStore.create({ dataDir, tickIntervalMs: 1_000_000 });
      try {
        const missing: string[] = [];
        for (const c of committed) {
          const record = await store.get(c.key);
          if (
            !record ||
            record.revision !== c.revision ||
            record.value.length !== c.length ||
            !record.value.startsWith(`v${Number(c.key.slice(6))}:`)
          ) {
            missing.push(`${c.key}@${c.revision}`);
          }
        }
        expect(missing, `round ${round}: committed writes lost after SIGKILL`).toEqual([]);
        // Revisions keep counting from where the killed process stopped, with no hole: each write was a new key.
        const revision = await store.revision();
        const records = await store.list('crash/');
        expect(records).toHaveLength(revision);
        expect(revision).toBeGreaterThanOrEqual(Math.max(...committed.map((c) => c.revision)));
        expect(committed[0]?.revision).toBe(lastRevision + 1);
        lastRevision = revision;
      } finally {
        await store.close();
      }
    }
    expect(reportedTotal).toBeGreaterThan(4);
  });
});
