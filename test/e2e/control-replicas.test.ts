import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStateStore } from '../../src/store/index.js';
import { startEtcd, type EtcdServer } from '../lib/etcd-server.js';
import { killAll, runCli, spawnCli, waitFor, type CliProc } from './lib/cli.js';

type Replica = CliProc;

const tag = `ctl-${randomBytes(4).toString('hex')}`;
let etcd: EtcdServer;
let dir: string;
const replicas: Replica[] = [];

function startControl(name: string, file: string, store: string): Replica {
  return startCli([
    'control',
    file,
    '--store',
    store,
    '--name',
    name,
    '--api',
    '127.0.0.1:0',
    '--lease-ttl',
    // The shortest TTL that keeps the rule loop + 2 × request timeout < TTL clear of a loaded machine:
    // the standby takes over once the killed leader's lease (whole seconds on etcd) lapses.
    '2s',
    '-d',
    join(dir, name),
  ]);
}

function startCli(args: string[]): Replica {
  return spawnCli(args, {}, replicas);
}

beforeAll(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'understudy-control-'));
  await writeFile(
    join(dir, 'srv.mjs'),
    "import http from 'node:http';\nhttp.createServer((q, s) => s.end('ok')).listen(Number(process.argv[2]), '127.0.0.1');\n",
  );
  // A primary and an echo: a new leader adopts the instances the old one started.
  await writeFile(
    join(dir, 'spec.yaml'),
    `services:
  - name: web
    command: [node, srv.mjs, '{port}']
    cwd: ${dir}
    env: { US_TEST_TAG: ${tag} }
    restart: { policy: on-failure, backoff: 50ms }
    stopGrace: 1s
`,
  );
});

afterAll(async () => {
  if (process.env.US_DEBUG_E2E) for (const r of replicas) process.stderr.write(`---\n${r.output()}\n`);
  await killAll(replicas, ['US_TEST_TAG', tag]);
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('understudy control on etcd', () => {
  it('runs one leader among two replicas; on SIGKILL of the leader mid-promotion the standby leads, records it as its first decision and resumes the promotion', async () => {
    const file = join(dir, 'spec.yaml');
    const url = `${etcd.url}/e2e/`;
    const a = startControl('a', file, url);
    await waitFor(() => a.output().includes('a leads the control plane'), 20_000, a.output);
    const b = startControl('b', file, url);
    await waitFor(() => b.output().includes('a leads (term'), 20_000, b.output);
    expect(b.output()).not.toContain('b leads the control plane');

    // status (through the leader's API) shows the leader and both replicas with their leases.
    await waitFor(
      () => runCli(['status', '-d', join(dir, 'a')]).stdout.includes('replica b: standby'),
      10_000,
      () => {
        const r = runCli(['status', '-d', join(dir, 'a')]);
        return r.stdout + r.stderr + a.output();
      },
    );
    const status = runCli(['status', '-d', join(dir, 'a')]).stdout;
    expect(status).toMatch(/control leader: a \(term \d+/);
    expect(status).toMatch(/replica a: leader, lease \d+ live/);

    const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix: 'e2e/' });
    try {
      // The leader is "killed in the middle of a promotion": its intent is recorded, the epoch not moved yet.
      type Rec = { id: string; role: string; phase: string; slot: number };
      const live = async (role: string): Promise<Rec | undefined> =>
        (await store.list('instances/'))
          .map((r) => JSON.parse(r.value) as Rec)
          .find((r) => r.role === role && r.phase !== 'stopped' && r.phase !== 'failed');
      await waitFor(
        async () => (await live('primary')) !== undefined && (await live('echo')) !== undefined,
        10_000,
        a.output,
      );
      const [primary, echo] = [(await live('primary')) as Rec, (await live('echo')) as Rec];
      const epoch = await store.epoch('web');
      await store.put(
        'promotions/web',
        JSON.stringify({
          service: 'web',
          kind: 'failover',
          from: primary.id,
          to: echo.id,
          toSlot: echo.slot,
          epoch,
          next: epoch + 1,
          at: Date.now(),
          decision: 1,
        }),
      );
      a.child.kill('SIGKILL');
      await a.exited;
      await waitFor(() => b.output().includes('b leads the control plane'), 15_000, b.output);
      await waitFor(
        async () =>
          (await store.list('events/')).some(
            (r) => r.value.includes('"kind":"leadership"') && r.value.includes('as b '),
          ),
        10_000,
        () => 'the leadership decision of b',
      );
      const decisions = (await store.list('events/')).map(
        (r) => JSON.parse(r.value) as { kind: string; what: string; why: string; seq: number },
      );
      const bTerm = decisions.find((d) => d.kind === 'leadership' && d.what.includes('as b '));
      expect(bTerm?.why).toContain('previous leader a is gone');
      // Taking leadership resumed the half-done promotion: both instances still run, so it changed nothing.
      await waitFor(
        async () => (await store.get('promotions/web')) === undefined,
        10_000,
        () => 'the intent to be resolved',
      );
      const recovery = (await store.list('events/'))
        .map((r) => JSON.parse(r.value) as { kind: string; seq: number; what: string })
        .find((d) => d.kind === 'promotion-recovery');
      expect(recovery?.what).toBe(`roll back the interrupted failover: ${primary.id} stays the primary`);
      expect(recovery?.seq).toBeGreaterThan(bTerm?.seq ?? Infinity);
      expect(await store.epoch('web')).toBe(epoch);
      expect((await store.get('control/leader'))?.value).toContain('"id":"b"');
      // The new leader serves the API from its own data directory, and status names it.
      await waitFor(
        () => /control leader: b \(term \d+/.test(runCli(['status', '-d', join(dir, 'b')]).stdout),
        15_000,
        () => runCli(['status', '-d', join(dir, 'b')]).stderr + b.output(),
      );
      const stopAt = Date.now();
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      if (process.env.US_DEBUG_E2E) process.stderr.write(`b stopped in ${Date.now() - stopAt} ms\n`);
      // b resigned: nobody leads.
      expect(await store.get('control/leader')).toBeUndefined();
    } finally {
      await store.close();
    }
  }, 90_000);

  it('refuses a bad --store with a clear usage error, starting nothing', () => {
    const r = runCli([
      'up',
      join(dir, 'spec.yaml'),
      '--store',
      'etcd://127.0.0.1:99999',
      '-d',
      join(dir, 'bad'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("invalid etcd connection string 'etcd://127.0.0.1:99999'");
    expect(r.stderr).toContain('not 1-65535');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('up --store etcd:// runs control, agent and router in one process against etcd, and stops cleanly', async () => {
    const up = startCli([
      'up',
      join(dir, 'spec.yaml'),
      '--store',
      `${etcd.url}/up/`,
      '--api',
      '127.0.0.1:0',
      '-d',
      join(dir, 'up'),
    ]);
    await waitFor(() => up.output().includes('leads the control plane'), 20_000, up.output);
    await waitFor(
      () => /control leader: \S+ \(term \d+/.test(runCli(['status', '-d', join(dir, 'up')]).stdout),
      15_000,
      up.output,
    );
    const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix: 'up/' });
    try {
      expect((await store.list('instances/')).length).toBeGreaterThan(0);
      up.child.kill('SIGTERM');
      expect(await up.exited).toBe(0);
      expect(await store.get('control/leader')).toBeUndefined();
    } finally {
      await store.close();
    }
  }, 60_000);
});
