// examples/redis on the real redis-server: unique writes through Understudy's address, SIGKILL of the
// primary, the external echo promoted by its hook (REPLICAOF NO ONE), writes go on, nothing acknowledged
// by WAIT is lost, and the old primary rejoins as a replica of the new one. A planned switchover
// (`understudy switchover`) under writes loses nothing acknowledged even by SET alone: it promotes the
// echo only once the old primary is cut off and the echo's lag hook reads 0.
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ApiClient } from '../../src/api/index.js';
import { RespClient, RespError, parseInfo } from '../../bench/lib/resp.js';
import { cliBin, processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';

const haveRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
const work = mkdtempSync(join(tmpdir(), 'understudy-redis-'));
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

/** The example spec, run from its folder, with a tag in its instances' environment (to check cleanup). */
function exampleSpec(tag: string, name = 'redis'): string {
  const dir = join(repoRoot, 'examples/redis');
  const doc = parse(readFileSync(join(dir, 'understudy.yaml'), 'utf8')) as {
    services: Record<string, unknown>[];
  };
  const svc = doc.services[0] as Record<string, unknown>;
  svc['cwd'] = dir;
  svc['env'] = { US_TEST_TAG: tag };
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

async function info(port: number): Promise<Record<string, string>> {
  const c = await RespClient.connect('127.0.0.1', port);
  try {
    const r = await c.command(['INFO', 'replication']);
    return typeof r === 'string' ? parseInfo(r) : {};
  } finally {
    c.close();
  }
}

describe.skipIf(!haveRedis)('the Redis recipe (external echo)', { timeout: 90_000 }, () => {
  it('promotes the replica on SIGKILL of the primary, loses nothing acknowledged by WAIT, and the old primary rejoins as a replica', async () => {
    const tag = randomUUID();
    const dataDir = join(work, 'data');
    const up: UpProcess = await startUp(exampleSpec(tag), dataDir);
    cleanups.push(async () => {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    });
    const api = ApiClient.fromDataDir(dataDir);
    const service = async () => (await api.services()).find((s) => s.name === 'redis');
    // The echo follows the primary: its lag hook reads 0 bytes behind.
    await waitFor(
      async () => (await service())?.externalEchoes?.some((e) => e.lagBytes === 0) ?? false,
      30_000,
      up.output,
    );
    const address = (await service())?.dataPlane?.address ?? '';
    const routerPort = Number(address.split(':').at(-1));
    const running = async () => (await api.instances()).filter((i) => i.phase === 'running');
    const first = (await running()).find((i) => i.role === 'primary');
    expect(first?.pid).toBeGreaterThan(0);

    // Unique keys, one connection at a time; a write counts as acknowledged when SET answered OK, and
    // as replicated when WAIT 1 then answered 1 (the replica has it).
    const acked: string[] = [];
    const replicated: string[] = [];
    let failed = 0;
    let stop = false;
    let killedAt = 0;
    let firstAfterKill = 0;
    const writer = (async () => {
      let c: RespClient | undefined;
      for (let i = 0; !stop; i++) {
        const key = `k${i}`;
        try {
          c ??= await RespClient.connect('127.0.0.1', routerPort);
          const set = await c.command(['SET', key, String(i)], 1000);
          if (set !== 'OK') throw new Error(set instanceof RespError ? set.message : String(set));
          acked.push(key);
          if (killedAt && !firstAfterKill) firstAfterKill = Date.now();
          const wait = await c.command(['WAIT', 1, 200], 1000);
          if (wait === 1) replicated.push(key);
        } catch {
          failed++;
          c?.close();
          c = undefined;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      c?.close();
    })();
    await waitFor(
      () => replicated.length >= 200,
      20_000,
      () => `only ${replicated.length} writes replicated`,
    );
    killedAt = Date.now();
    process.kill(first?.pid ?? 0, 'SIGKILL');
    const ackedAtKill = acked.length;
    await waitFor(() => acked.length >= ackedAtKill + 100, 30_000, up.output);
    stop = true;
    await writer;

    const now = await running();
    const promoted = now.find((i) => i.role === 'primary');
    expect(promoted?.id).not.toBe(first?.id);
    expect((await info(promoted?.ports['redis'] ?? 0))['role']).toBe('master');
    const failover = (await api.events({ service: 'redis', limit: 1000 })).find((e) => e.kind === 'failover');
    expect(failover?.outcome.status).toBe('ok');

    // Read back every acknowledged key through Understudy's address.
    const reader = await RespClient.connect('127.0.0.1', routerPort);
    const present = new Set<string>();
    for (let i = 0; i < acked.length; i += 500) {
      const keys = acked.slice(i, i + 500);
      const values = await reader.command(['MGET', ...keys], 5000);
      (values as (string | null)[]).forEach((v, j) => v !== null && present.add(keys[j] ?? ''));
    }
    reader.close();
    const lostReplicated = replicated.filter((k) => !present.has(k));
    const lostAcked = acked.filter((k) => !present.has(k));
    console.log(
      `redis recipe: ${acked.length} writes acknowledged (${replicated.length} by WAIT), ${failed} failed; ` +
        `first write ${firstAfterKill - killedAt} ms after SIGKILL; lost: ${lostAcked.length} acknowledged by SET alone, ${lostReplicated.length} acknowledged by WAIT`,
    );
    // Asynchronous replication may lose the writes SET acknowledged that had not reached the replica;
    // every write WAIT confirmed on the replica survives the promotion.
    expect(lostReplicated).toEqual([]);
    expect(lostAcked.every((k) => !replicated.includes(k))).toBe(true);

    // The old primary restarts from its AOF and follows the new one (the rejoin hook), and catches up.
    await waitFor(
      async () => {
        const old = (await running()).find((i) => i.id === first?.id);
        if (old?.role !== 'echo') return false;
        const r = await info(old.ports['redis'] ?? 0).catch(() => ({}) as Record<string, string>);
        return (
          r['role'] === 'slave' &&
          r['master_port'] === String(promoted?.ports['redis']) &&
          r['master_link_status'] === 'up'
        );
      },
      30_000,
      up.output,
    );
    const rejoin = (await api.events({ service: 'redis', limit: 1000 })).find(
      (e) => e.kind === 'external-rejoin' && e.instance === first?.id,
    );
    expect(rejoin?.outcome.status).toBe('ok');
    const last = acked.at(-1) ?? '';
    const old = (await running()).find((i) => i.id === first?.id);
    await waitFor(async () => {
      const c = await RespClient.connect('127.0.0.1', old?.ports['redis'] ?? 0);
      try {
        return (await c.command(['GET', last])) !== null;
      } finally {
        c.close();
      }
    }, 10_000);
  });

  it('switches over under writes without losing one acknowledged write: the echo is promoted only at lag 0', async () => {
    const tag = randomUUID();
    const dataDir = join(work, 'data-switchover');
    const up: UpProcess = await startUp(exampleSpec(tag, 'redis-switchover'), dataDir);
    cleanups.push(async () => {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    });
    const api = ApiClient.fromDataDir(dataDir);
    const service = async () => (await api.services()).find((s) => s.name === 'redis');
    await waitFor(
      async () => (await service())?.externalEchoes?.some((e) => e.lagBytes === 0) ?? false,
      30_000,
      up.output,
    );
    const routerPort = Number((await service())?.dataPlane?.address.split(':').at(-1));
    const primaryOf = async () => (await api.instances()).find((i) => i.role === 'primary');
    const first = await primaryOf();

    // SET alone (asynchronous replication, no WAIT): what the old primary acknowledged last may not
    // have reached the echo when the switchover starts.
    const acked: string[] = [];
    let stop = false;
    const writer = (async () => {
      let c: RespClient | undefined;
      for (let i = 0; !stop; i++) {
        try {
          c ??= await RespClient.connect('127.0.0.1', routerPort);
          if ((await c.command(['SET', `s${i}`, String(i)], 1000)) !== 'OK') throw new Error('not OK');
          acked.push(`s${i}`);
        } catch {
          c?.close();
          c = undefined;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      c?.close();
    })();
    await waitFor(
      () => acked.length >= 300,
      20_000,
      () => `only ${acked.length} writes acknowledged`,
    );
    // The operator verb, run without blocking this process's writer.
    const cli = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        [cliBin, '-d', dataDir, 'switchover', 'redis'],
        { encoding: 'utf8', timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(cli.code, cli.out).toBe(0);
    const ackedAtSwitch = acked.length;
    await waitFor(() => acked.length >= ackedAtSwitch + 200, 20_000, up.output);
    stop = true;
    await writer;

    const promoted = await primaryOf();
    expect(promoted?.id).not.toBe(first?.id);
    expect((await info(promoted?.ports['redis'] ?? 0))['role']).toBe('master');
    const switchover = (await api.events({ service: 'redis', limit: 1000 })).find(
      (e) => e.kind === 'switchover',
    );
    expect(switchover?.outcome.status).toBe('ok');
    // The decision says what it waited for: the echo's lag once the old primary was cut off, then 0.
    expect(switchover?.inputs).toMatchObject({ externalLagBytes: 0, externalCatchUp: { lagBytes: 0 } });

    const reader = await RespClient.connect('127.0.0.1', routerPort);
    const present = new Set<string>();
    for (let i = 0; i < acked.length; i += 500) {
      const keys = acked.slice(i, i + 500);
      const values = await reader.command(['MGET', ...keys], 5000);
      (values as (string | null)[]).forEach((v, j) => v !== null && present.add(keys[j] ?? ''));
    }
    reader.close();
    const catchUp = switchover?.inputs['externalCatchUp'] as { lagBytesAtCut: number; waitedMs: number };
    console.log(
      `redis recipe switchover: ${acked.length} writes acknowledged by SET; lag at the cut ${catchUp.lagBytesAtCut} bytes, caught up in ${catchUp.waitedMs} ms`,
    );
    expect(acked.filter((k) => !present.has(k))).toEqual([]);
    // The old primary follows the new one.
    await waitFor(
      async () => {
        const r = await info(first?.ports['redis'] ?? 0).catch(() => ({}) as Record<string, string>);
        return r['role'] === 'slave' && r['master_port'] === String(promoted?.ports['redis']);
      },
      20_000,
      up.output,
    );
  });
});
