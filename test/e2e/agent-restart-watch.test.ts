// Detection survives an agent restart (real etcd, real processes, on loopback): a control replica
// drives one `understudy agent` (host h1) found in the store. The agent's API listens on port 0, so each
// agent of the host comes back on a new address. After a planned restart (`--leave-running`) a primary
// that hangs (SIGSTOP) is still detected and failed over; after a SIGKILL of the agent and a restart, an
// echo whose health check starts failing is still restarted. Before control moved the watches of a
// host's instances to its new agent, neither verdict reached control until its next term.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterKey } from '../../src/agent/index.js';
import { EtcdStateStore } from '../../src/store/index.js';
import { startEtcd, type EtcdServer } from '../lib/etcd-server.js';
import { isAlive, killAll, repoRoot, spawnCli, waitFor, type CliProc } from './lib/cli.js';
import { runningInstance, storedDecisions } from './lib/store-records.js';

const tag = randomUUID();
const work = mkdtempSync(join(tmpdir(), 'understudy-agent-restart-watch-'));
const keyFile = join(work, 'cluster.key');
const specFile = join(work, 'kv.yaml');
/** An instance is unhealthy while a file named after it exists here (its exec health check). */
const sickDir = join(work, 'sick');
const procs: CliProc[] = [];
let etcd: EtcdServer;
let url: string;
let store: EtcdStateStore;
let agent: CliProc;
let control: CliProc;

async function startAgent(): Promise<{ proc: CliProc; api: string }> {
  const proc = spawnCli(
    [
      'agent',
      '--store',
      url,
      '--host',
      'h1',
      '--cluster-key',
      keyFile,
      '--leave-running',
      '--restart-grace',
      '30s',
    ],
    {},
    procs,
  );
  await waitFor(() => /serving https?:\/\/\S+/.test(proc.output()), 20_000, proc.output);
  return { proc, api: /serving (https?:\/\/\S+)/.exec(proc.output())![1]! };
}

const live = (role: string) => runningInstance(store, role);
const decisions = (since: number) => storedDecisions(store, since);

const describeRun = (): string =>
  `control:\n${control.output().slice(-3000)}\nagent:\n${agent.output().slice(-1500)}`;

beforeAll(async () => {
  etcd = await startEtcd();
  url = `${etcd.url}/rw-${tag.slice(0, 8)}/`;
  ensureClusterKey(keyFile);
  mkdirSync(sickDir);
  writeFileSync(
    specFile,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    health:
      exec: [/bin/sh, -c, 'test ! -e "${sickDir}/$UNDERSTUDY_INSTANCE"']
      interval: 200ms
      timeout: 2s
      failureThreshold: 2
    echo: { count: 1, mode: warm, promote: { http: /admin/reload } }
`,
  );
  store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix: `rw-${tag.slice(0, 8)}/` });
  agent = (await startAgent()).proc;
  control = spawnCli(
    [
      'control',
      specFile,
      '--store',
      url,
      '--name',
      'a',
      '--api',
      '127.0.0.1:0',
      '--cluster-key',
      keyFile,
      '-d',
      join(work, 'a'),
    ],
    {},
    procs,
  );
  await waitFor(
    async () => (await live('primary')) !== undefined && (await live('echo')) !== undefined,
    45_000,
    describeRun,
  );
}, 90_000);

afterAll(async () => {
  if (process.env.US_DEBUG_E2E) for (const p of procs) process.stderr.write(`---\n${p.output()}\n`);
  await store?.close();
  await killAll(procs, ['US_TEST_TAG', tag]);
  await etcd?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('health and hang watches follow a host to its restarted agent', { timeout: 90_000 }, () => {
  it('after a planned restart of the agent on a new address, a primary that hangs (SIGSTOP) is failed over to its echo', async () => {
    const primary = (await live('primary'))!;
    const echo = (await live('echo'))!;
    const before = /serving (https?:\/\/\S+)/.exec(agent.output())![1];
    const since = Date.now();
    agent.child.kill('SIGTERM');
    await agent.exited;
    expect(agent.output()).toContain('planned restart of host h1');
    const next = await startAgent();
    agent = next.proc;
    expect(next.api).not.toBe(before);
    await waitFor(
      () => agent.output().includes(`adopted ${primary.id} (pid ${primary.handle!.pid})`),
      20_000,
      describeRun,
    );
    // The leader saw the agent back (the planned restart's decision settled `ok`).
    await waitFor(
      async () =>
        (await decisions(since)).some((d) => d.kind === 'host-restart' && d.outcome.status === 'ok'),
      20_000,
      describeRun,
    );

    const hungAt = Date.now();
    process.kill(primary.handle!.pid, 'SIGSTOP');
    try {
      await waitFor(
        async () =>
          (await decisions(hungAt)).some(
            (d) => d.kind === 'failover' && d.why.startsWith('hang:') && d.outcome.status === 'ok',
          ),
        20_000,
        describeRun,
      );
    } finally {
      if (isAlive(primary.handle!.pid)) process.kill(primary.handle!.pid, 'SIGCONT');
    }
    const failover = (await decisions(hungAt)).find((d) => d.kind === 'failover')!;
    expect(failover.what).toBe(`promote ${echo.id} in place of ${primary.id}`);
    expect((await live('primary'))?.id).toBe(echo.id);
  });

  it('after a SIGKILL of the agent and a restart on a new address, an echo whose health check fails is restarted', async () => {
    // The old primary comes back as the echo of the new one first.
    await waitFor(async () => (await live('echo')) !== undefined, 45_000, describeRun);
    const echo = (await live('echo'))!;
    const before = /serving (https?:\/\/\S+)/.exec(agent.output())![1];
    agent.child.kill('SIGKILL');
    await agent.exited;
    const next = await startAgent();
    agent = next.proc;
    expect(next.api).not.toBe(before);
    await waitFor(
      () => agent.output().includes(`adopted ${echo.id} (pid ${echo.handle!.pid})`),
      20_000,
      describeRun,
    );

    const sickAt = Date.now();
    writeFileSync(join(sickDir, echo.id), '');
    try {
      await waitFor(
        async () =>
          (await decisions(sickAt)).some(
            (d) => d.kind === 'unhealthy' && d.what === `restart unhealthy echo ${echo.id}`,
          ),
        20_000,
        describeRun,
      );
    } finally {
      rmSync(join(sickDir, echo.id), { force: true });
    }
    // Nothing took the host for lost: the restart was a health verdict's, through the new agent.
    expect((await decisions(sickAt)).filter((d) => d.kind === 'host-lost')).toEqual([]);
  });
});
