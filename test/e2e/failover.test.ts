import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import { isAlive, processesWithEnv, repoRoot, runCli, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { kvLoad, missingAcked, kvService } from './lib/kv-load.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-failover-'));
let current: { up: UpProcess; tag: string } | undefined;

afterEach(async () => {
  if (!current) return;
  current.up.child.kill('SIGINT');
  await current.up.exited;
  expect(processesWithEnv('US_TEST_TAG', current.tag)).toEqual([]);
  current = undefined;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Starts `up` with a hot kv service (write-through unless told otherwise) and waits until both instances run. */
async function startHot(
  consistency: 'write-through' | 'async' = 'write-through',
): Promise<{ api: ApiClient; base: string; dataDir: string }> {
  return startKv(`{ count: 1, mode: hot, consistency: ${consistency} }`, 2);
}

/** Starts `up` with a kv service whose echo is as given, and waits until `running` instances run. */
async function startKv(
  echo: string,
  running: number,
): Promise<{ api: ApiClient; base: string; dataDir: string; file: string }> {
  const tag = randomUUID();
  const file = join(work, `${tag}.yaml`);
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: ${echo}
    restart: { backoff: 50ms, maxRestarts: 50 }
`,
  );
  const dataDir = join(work, `data-${tag}`);
  const up = await startUp(file, dataDir);
  current = { up, tag };
  const api = ApiClient.fromDataDir(dataDir);
  await waitFor(
    async () => (await kvService(api)).instances.filter((i) => i.phase === 'running').length === running,
    15_000,
    up.output,
  );
  const base = `http://${(await kvService(api)).dataPlane?.address}`;
  return { api, base, dataDir, file };
}

async function primaryOf(api: ApiClient): Promise<{ id: string; pid: number; stateDir: string }> {
  const p = (await kvService(api)).instances.find((i) => i.role === 'primary');
  if (!p?.pid) throw new Error('no primary');
  return { id: p.id, pid: p.pid, stateDir: p.stateDir };
}

/** Every request id appears at most once in the final primary's log: no write applied twice. */
function duplicateIds(stateDir: string): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const line of readFileSync(join(stateDir, 'kv.log'), 'utf8').split('\n')) {
    const m = /"id":"([^"]+)"/.exec(line);
    if (!m?.[1]) continue;
    if (seen.has(m[1])) dups.push(m[1]);
    seen.add(m[1]);
  }
  return dups;
}

/** Epochs of successful promotions, in order: strictly increasing means at most one primary per epoch. */
async function promotionEpochs(api: ApiClient): Promise<number[]> {
  const events = await api.events({ service: 'kv', limit: 10_000 });
  return events
    .filter((e) => (e.kind === 'failover' || e.kind === 'switchover') && e.outcome.status === 'ok')
    .map((e) => Number(e.inputs.epoch));
}

async function waitRedundant(api: ApiClient): Promise<void> {
  await waitFor(async () => {
    const svc = await kvService(api);
    return (
      !svc.degraded &&
      svc.instances.filter((i) => i.phase === 'running').length === 2 &&
      svc.instances.some((i) => i.role === 'primary' && i.phase === 'running')
    );
  }, 20_000);
}

describe('failover of a hot, write-through echo (real processes)', { timeout: 120_000 }, () => {
  it('loses no acknowledged write and applies none twice when the primary is killed with SIGKILL under load', async () => {
    const { api, base, dataDir } = await startHot();
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 150, writeShare: 0.2, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 700));
    const before = await primaryOf(api);
    process.kill(before.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    stop.abort();
    const result = await load;
    const after = await primaryOf(api);
    expect(after.id).not.toBe(before.id);
    expect(result.acked.size).toBeGreaterThan(20);
    expect(await missingAcked(base, result.acked)).toEqual([]);
    expect(duplicateIds(after.stateDir)).toEqual([]);
    expect(result.errorSamples).toEqual([]);
    // A corrupted echo is caught by verify (exit 1), naming the file.
    await waitRedundant(api);
    const echo = (await kvService(api)).instances.find((i) => i.role === 'echo');
    writeFileSync(join(echo?.stateDir ?? '', 'stray.txt'), 'not on the primary');
    const verify = runCli(['verify', 'kv', '-d', dataDir]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/only-in-b\s+stray\.txt/);
    const svc = await kvService(api);
    expect(svc.lastFailover).toMatchObject({ kind: 'failover', from: before.id, to: after.id, atRisk: [] });
    expect(await promotionEpochs(api)).toEqual([1]);
  });

  it('fences a hung (SIGSTOPped) primary: promoted around, and it never serves again after SIGCONT', async () => {
    const { api, base } = await startHot();
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 100, writeShare: 0.2, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 500));
    const before = await primaryOf(api);
    process.kill(before.pid, 'SIGSTOP');
    await waitFor(async () => (await primaryOf(api)).id !== before.id, 10_000);
    try {
      process.kill(before.pid, 'SIGCONT');
    } catch {
      // already gone: fenced by SIGKILL
    }
    await new Promise((r) => setTimeout(r, 500));
    stop.abort();
    const result = await load;
    expect(isAlive(before.pid)).toBe(false);
    const svc = await kvService(api);
    expect(svc.lastFailover?.cause).toMatch(/^hang: process \d+ is stopped/);
    expect(await missingAcked(base, result.acked)).toEqual([]);
    expect(duplicateIds((await primaryOf(api)).stateDir)).toEqual([]);
  });

  it('keeps serving when the echo is killed, and a new echo catches up', async () => {
    const { api, base } = await startHot();
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 100, writeShare: 0.3, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 400));
    const primary = await primaryOf(api);
    const echo = (await kvService(api)).instances.find((i) => i.role === 'echo');
    process.kill(echo?.pid ?? 0, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    stop.abort();
    const result = await load;
    expect(result.errorSamples).toEqual([]);
    expect((await primaryOf(api)).id).toBe(primary.id);
    await waitRedundant(api);
    // The echo that came back has every acknowledged write: fail over to it and read them all.
    await api.failover('kv', 'test: promote the rebuilt echo');
    expect(await missingAcked(base, result.acked)).toEqual([]);
  });

  it('survives ten failovers in a row with nothing acknowledged lost', async () => {
    const { api, base } = await startHot();
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 100, writeShare: 0.3, signal: stop.signal });
    for (let i = 0; i < 10; i++) {
      await waitRedundant(api);
      const p = await primaryOf(api);
      process.kill(p.pid, 'SIGKILL');
      await waitFor(async () => (await primaryOf(api).catch(() => p)).id !== p.id, 10_000);
    }
    stop.abort();
    const result = await load;
    expect(await missingAcked(base, result.acked)).toEqual([]);
    expect(duplicateIds((await primaryOf(api)).stateDir)).toEqual([]);
    const epochs = await promotionEpochs(api);
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
    expect(new Set(epochs).size).toBe(epochs.length);
    expect(epochs.length).toBeGreaterThanOrEqual(10);
  });

  it('switches over on request with no failed request', async () => {
    const { api, base } = await startHot();
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 150, writeShare: 0.3, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 500));
    const before = await primaryOf(api);
    const decision = await api.switchover('kv');
    expect(decision.outcome.status).toBe('ok');
    expect(decision.outcome.detail).toEqual(expect.any(String));
    await new Promise((r) => setTimeout(r, 500));
    stop.abort();
    const result = await load;
    expect(result.errors).toBe(0);
    const after = await primaryOf(api);
    expect(after.id).not.toBe(before.id);
    expect(isAlive(before.pid)).toBe(true); // the old primary stays, as an echo
    expect(await missingAcked(base, result.acked)).toEqual([]);
  });
});

describe('failback', { timeout: 120_000 }, () => {
  it('gives the role back to the old primary once it has rejoined and caught up, with failback: auto', async () => {
    const { api, base } = await startKv(`{ count: 1, mode: hot }\n    failover: { failback: auto }`, 2);
    const first = await primaryOf(api);
    const res = await fetch(`${base}/kv/fb`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(200);
    await api.failover('kv', 'test failback');
    await waitFor(async () => {
      const svc = await kvService(api);
      return svc.lastFailover?.kind === 'switchover' && (await primaryOf(api)).id === first.id;
    }, 30_000);
    expect(await (await fetch(`${base}/kv/fb`)).text()).toBe('x');
  });
});

describe('a restart of the control process itself', { timeout: 120_000 }, () => {
  it('adopts the running instances instead of restarting them, and loses nothing acknowledged', async () => {
    const { api, base, dataDir, file } = await startKv('{ count: 1, mode: hot }', 2);
    const stop = new AbortController();
    const load = kvLoad(base, { rate: 100, writeShare: 0.3, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 800));
    stop.abort();
    const result = await load;
    const before = (await kvService(api)).instances.map((i) => `${i.id}:${i.role}:${i.pid}`).sort();
    const old = current;
    old?.up.child.kill('SIGKILL');
    await old?.up.exited;
    // The instances survive their control process.
    for (const i of before) expect(isAlive(Number(i.split(':')[2]))).toBe(true);
    const up = await startUp(file, dataDir);
    if (old) current = { up, tag: old.tag };
    const again = ApiClient.fromDataDir(dataDir);
    await waitFor(
      async () => (await kvService(again)).instances.filter((i) => i.phase === 'running').length === 2,
      15_000,
      up.output,
    );
    expect((await kvService(again)).instances.map((i) => `${i.id}:${i.role}:${i.pid}`).sort()).toEqual(
      before,
    );
    const events = await again.events({ service: 'kv', limit: 1000 });
    expect(
      events
        .filter((e) => e.kind === 'adopt')
        .map((e) => e.instance)
        .sort(),
    ).toEqual(before.map((b) => b.split(':')[0]).sort());
    const newBase = `http://${(await kvService(again)).dataPlane?.address}`;
    expect(await missingAcked(newBase, result.acked)).toEqual([]);
    // And it still fails over afterwards.
    const primary = await primaryOf(again);
    process.kill(primary.pid, 'SIGKILL');
    await waitFor(async () => (await primaryOf(again).catch(() => primary)).id !== primary.id, 10_000);
    expect(await missingAcked(newBase, result.acked)).toEqual([]);
  });
});

describe('failover of warm and cold echoes (files synced, real processes)', { timeout: 120_000 }, () => {
  for (const mode of ['warm', 'cold'] as const) {
    it(`promotes a ${mode} echo whose files caught up, with every write that was synced`, async () => {
      const { api, base, dataDir } = await startKv(
        `{ count: 1, mode: ${mode}, promote: { http: /admin/reload } }`,
        mode === 'warm' ? 2 : 1,
      );
      const acked = new Map<string, string>();
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${base}/kv/f${i}`, {
          method: 'PUT',
          body: `v${i}`,
          headers: { 'x-request-id': `f${i}` },
        });
        expect(res.status).toBe(200);
        acked.set(`f${i}`, `v${i}`);
      }
      // The echo has every change once its file sync reports no lag.
      await waitFor(async () => {
        const sync = (await kvService(api)).fileSync?.[0];
        return (
          sync !== undefined &&
          sync.connected &&
          sync.lagBytes === 0 &&
          sync.lagSeconds === 0 &&
          sync.lastAppliedSeq > 0
        );
      }, 10_000);
      const echo = (await kvService(api)).instances.find((i) => i.role === 'echo');
      expect(echo?.phase).toBe(mode === 'warm' ? 'running' : 'standby');
      const verify = runCli(['verify', 'kv', '-d', dataDir]);
      expect(verify.stdout).toBe(`${echo?.id}: identical to ${(await primaryOf(api)).id}\n`);
      expect(verify.code).toBe(0);
      const before = await primaryOf(api);
      process.kill(before.pid, 'SIGKILL');
      await waitFor(async () => (await primaryOf(api).catch(() => before)).id !== before.id, 15_000);
      expect(await missingAcked(base, acked)).toEqual([]);
      const svc = await kvService(api);
      expect(svc.lastFailover?.to).toBe(echo?.id);
      // Redundancy comes back: the old primary rejoins as an echo and is synced from the new primary.
      await waitFor(async () => !(await kvService(api)).degraded, 20_000);
    });
  }
});
