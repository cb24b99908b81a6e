// Disk full on the durable mutation log, for real (issue 16's chaos list): `understudy up` with the
// log's directory on a small tmpfs, a strict write-through hot kv service, writes until the tmpfs is
// full. Needs root (mount), so it runs where the suite runs as root (CI) and is skipped elsewhere.
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { InstanceRecord } from '../../src/control/index.js';
import { allocatePort } from '../../src/runtime/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';

const asRoot = process.getuid?.() === 0 && process.platform === 'linux';
const work = mkdtempSync(join(tmpdir(), 'understudy-disk-full-'));
const tag = randomUUID();
const dataDir = join(work, 'data');
const logMount = join(dataDir, 'mutations');
let mounted = false;
let up: UpProcess | undefined;

afterAll(async () => {
  if (up && up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGINT');
  await up?.exited;
  for (const pid of processesWithEnv('US_TEST_TAG', tag)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (mounted) {
    try {
      execFileSync('umount', [logMount]);
    } catch {
      execFileSync('umount', ['-l', logMount]);
    }
  }
  rmSync(work, { recursive: true, force: true });
});

/** Bodies big enough to fill the 256 KiB tmpfs in a few dozen writes. */
const BODY_BYTES = 4096;
const valueOf = (key: string): string => `${key}:`.padEnd(BODY_BYTES, 'x');

interface Put {
  status: number;
  body: string;
}

async function put(base: string, key: string, dispatcher: Agent): Promise<Put> {
  const res = await request(`${base}/kv/${key}`, {
    method: 'PUT',
    body: valueOf(key),
    headers: { 'x-request-id': `req-${key}`, 'content-type': 'text/plain' },
    dispatcher,
    headersTimeout: 20_000,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

interface LogStats {
  writeFailures: number;
  lastWriteError?: string;
  refusals: number;
}

describe.runIf(asRoot)('disk full on the durable mutation log (tmpfs, strict write-through)', () => {
  it('refuses writes with a clear error naming UNDERSTUDY_ERR_MUTATION_LOG_WRITE while the disk is full, loses nothing acknowledged, and acknowledges again once there is space', async () => {
    mkdirSync(logMount, { recursive: true, mode: 0o700 });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', logMount]);
    mounted = true;
    const port = await allocatePort();
    const file = join(work, 'understudy.yaml');
    writeFileSync(
      file,
      `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    ports: { http: 0 }
    routing: { listen: '127.0.0.1:${port}' }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo:
      count: 1
      mode: hot
      consistency: write-through
      mutations:
        order: pipelined
        batch: { path: /_understudy/batch, max: 64 }
        strict: true
    restart: { backoff: 50ms }
`,
    );
    up = await startUp(file, dataDir);
    const api = ApiClient.fromDataDir(dataDir);
    const base = `http://127.0.0.1:${port}`;
    let pair: { primary?: InstanceRecord | undefined; echo?: InstanceRecord | undefined } = {};
    await waitFor(async () => {
      const svc = (await api.services()).find((s) => s.name === 'kv');
      pair = {
        primary: svc?.instances.find((i) => i.role === 'primary' && i.phase === 'running'),
        echo: svc?.instances.find((i) => i.role === 'echo' && i.phase === 'running'),
      };
      return pair.primary !== undefined && pair.echo !== undefined;
    }, 30_000);
    const dispatcher = new Agent({ connections: 4 });
    try {
      // Four closed-loop writers until the log's disk is full and a few writes have been refused.
      const acked = new Set<string>();
      const refused: Put[] = [];
      const other: Put[] = [];
      let n = 0;
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          while (refused.length < 6 && n < 400) {
            const key = `w${w}-${n++}`;
            const r = await put(base, key, dispatcher);
            if (r.status === 200) acked.add(key);
            else if (r.status === 503) refused.push(r);
            else other.push(r);
          }
        }),
      );
      expect(other).toEqual([]);
      // The tmpfs holds ~60 records of 4 KiB: the first writes were acknowledged, then refused.
      expect(acked.size).toBeGreaterThan(10);
      expect(refused.length).toBeGreaterThanOrEqual(6);
      for (const r of refused) {
        const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
        expect(error.code).toBe('UNDERSTUDY_ERR_NOT_REPLICATED');
        expect(error.message).toMatch(/mutation log could not keep it \(UNDERSTUDY_ERR_MUTATION_LOG_WRITE: /);
        expect(error.message).toContain('disk is full');
        expect(error.message).toContain('retry with the same x-request-id');
      }
      // While the disk stays full, every write is refused.
      for (let i = 0; i < 3; i++) expect((await put(base, `still-full-${i}`, dispatcher)).status).toBe(503);
      const svcFull = (await api.services()).find((s) => s.name === 'kv');
      const log = (svcFull?.dataPlane?.replication as { log?: LogStats } | undefined)?.log;
      expect(log?.writeFailures).toBeGreaterThanOrEqual(1);
      expect(log?.refusals).toBeGreaterThanOrEqual(9);
      expect(log?.lastWriteError).toMatch(/^ENOSPC/);

      // Space again: the log continues (in a new segment after the gap) and writes are acknowledged.
      execFileSync('mount', ['-o', 'remount,size=8m', logMount]);
      await waitFor(async () => (await put(base, `after-${n++}`, dispatcher)).status === 200, 10_000);
      for (let i = 0; i < 5; i++) {
        const key = `after-space-${i}`;
        expect((await put(base, key, dispatcher)).status).toBe(200);
        acked.add(key);
      }

      // Nothing acknowledged was lost: the primary and the echo both hold every acknowledged write.
      for (const inst of [pair.primary, pair.echo] as InstanceRecord[]) {
        const instPort = Object.values(inst.ports)[0] ?? 0;
        const missing: string[] = [];
        for (const key of acked) {
          const res = await request(`http://127.0.0.1:${instPort}/kv/${key}`, { dispatcher });
          const value = await res.body.text();
          if (res.statusCode !== 200 || value !== valueOf(key)) missing.push(key);
        }
        expect({ instance: inst.role, missing }).toEqual({ instance: inst.role, missing: [] });
      }
    } finally {
      await dispatcher.close();
    }
  }, 120_000);
});
