// The control plane's behaviour, driven through a FakeAgent and a ManualClock: no process, file copy or
// probe happens, so every case runs in milliseconds. Each scenario is what the e2e tests check with
// real processes, stated here about the decisions control makes and what it asks of the host.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent, ManualClock } from '../agent/index.js';
import { parseSpecText, type LoadedSpec } from '../config/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';
import type { ControlTimeoutOptions } from './control-plane-options.js';
import { PROMOTION_PREFIX } from './failover.js';
import type { ControlDecision as Decision, InstanceRecord, PromotionIntent } from './records.js';

interface Harness {
  control: ControlPlane;
  agent: FakeAgent;
  clock: ManualClock;
  store: SqliteStateStore;
  decisions: Decision[];
  rec(id: string): InstanceRecord;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A store in a temp directory, optionally seeded as an earlier control process left it. */
async function openStore(): Promise<{ store: SqliteStateStore; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-cp-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

async function startControl(
  yaml: string,
  o: {
    store?: SqliteStateStore;
    dir?: string;
    agent?: FakeAgent;
    clock?: ManualClock;
    timeouts?: ControlTimeoutOptions;
  } = {},
): Promise<Harness> {
  const { store, dir } = o.store && o.dir ? { store: o.store, dir: o.dir } : await openStore();
  const clock = o.clock ?? new ManualClock();
  const agent = o.agent ?? new FakeAgent({ clock });
  const file = join(dir, 'understudy.yaml');
  const spec: LoadedSpec = { spec: parseSpecText(yaml, file), file, dir };
  const control = await ControlPlane.create({
    spec,
    dataDir: dir,
    store,
    agents: new AgentRegistry([agent]),
    clock,
    ...(o.timeouts ? { timeouts: o.timeouts } : {}),
  });
  const decisions: Decision[] = [];
  control.decisions.subscribe((d) => {
    const i = decisions.findIndex((x) => x.seq === d.seq);
    if (i >= 0) decisions[i] = { ...d };
    else decisions.push({ ...d });
  });
  cleanups.push(() => control.close());
  await control.start();
  const rec = (id: string): InstanceRecord => {
    const r = control.instances().find((i) => i.id === id);
    if (!r) throw new Error(`no instance ${id}`);
    return r;
  };
  return { control, agent, clock, store, decisions, rec };
}

/** Lets pending promises and immediates run until `cond` holds (event-loop turns, not wall time). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

const phases = (h: Harness): string =>
  h.control
    .instances()
    .map((i) => `${i.id}:${i.role}:${i.phase}`)
    .join(' ');

const BASIC = `services:
  - name: kv
    command: [kv]
    echo: { count: 1 }
`;

/** Hot echoes: state by replaying the router's mutation log (no file sync). */
const HOT = `services:
  - name: kv
    command: [kv]
    echo: { count: 1, mode: hot }
`;

const BASIC_HEALTH = `services:
  - name: kv
    command: [kv]
    health: { exec: [check], interval: 1s, failureThreshold: 3 }
    echo: { count: 1 }
`;

async function running(yaml: string, ids: string[], timeouts?: ControlTimeoutOptions): Promise<Harness> {
  const h = await startControl(yaml, timeouts ? { timeouts } : {});
  await until(
    () => ids.every((id) => h.control.instances().some((i) => i.id === id && i.phase === ids_phase(h, id))),
    'all running',
  );
  return h;
}

function ids_phase(h: Harness, id: string): string {
  const r = h.control.instances().find((i) => i.id === id);
  return r?.role === 'echo' && r.phase === 'standby' ? 'standby' : 'running';
}

const failovers = (h: Harness): Decision[] => h.decisions.filter((d) => d.kind === 'failover');

describe('failover (FakeAgent)', () => {
  it('a crashed primary is replaced by its echo at the next epoch, and the old one is fenced', async () => {
    const h = await running(BASIC, ['kv-1', 'kv-2']);
    h.agent.crash('kv-1');
    await until(() => h.rec('kv-2').role === 'primary', `kv-2 promoted (${phases(h)})`);
    await until(() => failovers(h)[0]?.outcome.status === 'ok', 'failover settled');
    expect(h.rec('kv-2').epoch).toBe(1);
    expect(await h.store.epoch('kv')).toBe(1);
    expect(h.rec('kv-1').role).toBe('echo');
    expect(h.agent.log).toContain('fence kv-1');
    expect(failovers(h)[0]?.why).toMatch(/^crash:/);
    // The promotion intent is gone once every role is saved.
    expect(await h.store.list(PROMOTION_PREFIX)).toEqual([]);
  });

  it('a hung primary (alive but silent) is fenced: killed before its echo serves', async () => {
    const h = await running(BASIC, ['kv-1', 'kv-2']);
    h.agent.hang('kv-1');
    await until(() => h.rec('kv-2').role === 'primary', `kv-2 promoted (${phases(h)})`);
    await until(() => failovers(h)[0]?.outcome.status === 'ok', 'failover settled');
    expect(h.agent.running('kv-1')).toBe(false);
    const log = h.agent.log;
    expect(log.indexOf('fence kv-1')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('exit kv-1')).toBe(log.indexOf('fence kv-1') + 1);
    expect(failovers(h)[0]?.why).toMatch(/^hang:/);
    // Its exit, caused by the fencing, is not treated as a crash of its own.
    expect(h.decisions.filter((d) => d.kind === 'exited' && d.instance === 'kv-1')).toEqual([]);
  });

  it('an unhealthy lone primary fails over to its echo', async () => {
    const h = await running(BASIC_HEALTH, ['kv-1', 'kv-2']);
    h.agent.unhealthy('kv-1', 3);
    await until(() => h.rec('kv-2').role === 'primary', `kv-2 promoted (${phases(h)})`);
    await until(() => failovers(h)[0]?.outcome.status === 'ok', 'failover settled');
    expect(failovers(h)[0]?.why).toMatch(/^unhealthy: 3 consecutive health checks failed/);
    expect(h.agent.running('kv-1')).toBe(false);
  });

  it('a promotion that fails half-way (a cold echo never ready) steps back and the next echo takes over', async () => {
    const yaml = `services:
  - name: c
    command: [c]
    health: { exec: [check], interval: 1s }
    echo: { count: 2, mode: cold }
`;
    const h = await running(yaml, ['c-1', 'c-2', 'c-3']);
    h.agent.neverReady('c-2');
    h.agent.crash('c-1');
    await until(
      () => h.rec('c-3').role === 'primary' && h.rec('c-3').phase === 'running',
      `c-3 serves (${phases(h)})`,
    );
    const [first, second] = failovers(h);
    expect(first?.what).toBe('promote c-2 in place of c-1');
    expect(first?.outcome).toMatchObject({ status: 'failed' });
    expect(first?.outcome.detail).toMatch(/^cold echo c-2 did not become ready within 10 s/);
    expect(second?.what).toBe('promote c-3 in place of c-1');
    expect(second?.outcome).toMatchObject({ status: 'ok' });
    expect(second?.outcome.detail).toMatch(/^c-3 serves at epoch 2/);
    // The echo that could not take over stepped back and was stopped.
    expect(h.rec('c-2')).toMatchObject({ role: 'echo', phase: 'stopped' });
    expect(h.agent.running('c-2')).toBe(false);
  });

  it('a failover no echo can carry out restarts the crashed primary in place, at the epoch the failed promotion moved to', async () => {
    const yaml = `services:
  - name: c
    command: [c]
    health: { exec: [check], interval: 1s }
    echo: { count: 1, mode: cold }
`;
    const h = await running(yaml, ['c-1', 'c-2']);
    h.agent.neverReady('c-2');
    h.agent.crash('c-1');
    await until(() => failovers(h)[0]?.outcome.status === 'failed', 'the failover failed');
    // The promotion failed after its compare-and-set: the epoch moved, and no echo is left to try.
    expect(await h.store.epoch('c')).toBe(1);
    for (let i = 0; i < 30 && h.rec('c-1').pid === 1000; i++) {
      h.clock.advance(1000);
      for (let j = 0; j < 50; j++) await new Promise((r) => setImmediate(r));
    }
    await until(
      () => h.rec('c-1').phase === 'running' && h.rec('c-1').pid !== 1000,
      `c-1 back (${phases(h)})`,
    );
    expect(h.rec('c-1')).toMatchObject({ role: 'primary', epoch: 1 });
    expect(
      h.decisions.some((d) => d.kind === 'restart' && d.instance === 'c-1' && d.outcome.status === 'ok'),
    ).toBe(true);
    expect(await h.store.list(PROMOTION_PREFIX)).toEqual([]);
  });

  it('an echo whose state cannot be copied fails its own start decision, and the control plane carries on and tries again after a pause', async () => {
    const clock = new ManualClock();
    const agent = new FakeAgent({ clock });
    let refusals = 0;
    agent.snapshotState = async () => {
      refusals++;
      throw new Error('cannot copy the state directory across hosts (scripted)');
    };
    const h = await startControl(HOT, { agent, clock });
    await until(() => h.rec('kv-1').phase === 'running', `kv-1 serves (${phases(h)})`);
    await until(
      () => h.decisions.some((d) => d.instance === 'kv-2' && d.outcome.status === 'failed'),
      `kv-2's start failed (${phases(h)})`,
    );
    const failed = h.decisions.find((d) => d.instance === 'kv-2' && d.outcome.status === 'failed');
    expect(failed?.outcome.detail).toMatch(/cannot copy the state directory/);
    expect(h.rec('kv-2').phase).not.toBe('running');
    const tried = refusals;
    // Not on every pass: the next attempt waits for the pause.
    await h.control.reconcileNow();
    expect(refusals).toBe(tried);
    clock.advance(10_000);
    await h.control.reconcileNow();
    await until(() => refusals > tried, 'tried again after the pause');
    // The primary kept serving throughout.
    expect(h.rec('kv-1').phase).toBe('running');
  });

  it('waits for a promoted cold echo as long as the resolved timeouts say', async () => {
    const yaml = `services:
  - name: c
    command: [c]
    health: { exec: [check], interval: 1s }
    echo: { count: 2, mode: cold }
`;
    const h = await running(yaml, ['c-1', 'c-2', 'c-3'], { coldPromotionReadyMs: 2500 });
    h.agent.neverReady('c-2');
    h.agent.crash('c-1');
    await until(() => failovers(h).length === 2, `two attempts (${phases(h)})`);
    expect(failovers(h)[0]?.outcome).toMatchObject({ status: 'failed' });
    expect(failovers(h)[0]?.outcome.detail).toMatch(/^cold echo c-2 did not become ready within 2.5 s/);
    // It waited 2.5 s of (virtual) time for c-2, not the default 10 s, before trying c-3.
    const [first, second] = failovers(h);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2500);
    expect(second!.at - first!.at).toBeLessThan(10_000);
  });

  it('a failing promotion hook makes the next warm echo take over', async () => {
    const yaml = `services:
  - name: w
    command: [w]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    echo: { count: 2, mode: warm, promote: { http: /promote } }
`;
    const h = await running(yaml, ['w-1', 'w-2', 'w-3']);
    h.agent.failNextHook();
    h.agent.crash('w-1');
    await until(
      () => failovers(h).some((d) => d.outcome.status === 'ok'),
      `a failover succeeds (${phases(h)})`,
    );
    const [first, second] = failovers(h);
    const bad = /^promote (w-\d)/.exec(first?.what ?? '')?.[1] ?? '';
    const good = bad === 'w-2' ? 'w-3' : 'w-2';
    expect(first?.outcome.status).toBe('failed');
    expect(first?.outcome.detail).toMatch(new RegExp(`^promotion hook /promote of ${bad} did not answer`));
    expect(second?.what).toBe(`promote ${good} in place of w-1`);
    expect(second?.outcome.status).toBe('ok');
    expect(second?.outcome.detail).toMatch(new RegExp(`^${good} serves at epoch 2`));
    expect(h.rec(good).role).toBe('primary');
    // The echo whose promotion failed half-way stepped back and was stopped.
    expect(h.rec(bad)).toMatchObject({ role: 'echo', phase: 'stopped' });
    expect(h.agent.log).toContain(`hook ${good} /promote`);
  });

  it('with no echo to take over, a crashed primary is restarted under the restart policy', async () => {
    const h = await running(`services:\n  - name: s\n    command: [s]\n    echo: { count: 0 }\n`, ['s-1']);
    h.agent.crash('s-1');
    await until(() => h.rec('s-1').phase === 'exited', 'exit observed');
    expect(failovers(h)).toEqual([]);
    h.clock.advance(h.rec('s-1').nextRestartAt! - h.clock.now());
    await until(() => h.agent.log.filter((l) => l === 'start s-1').length === 2, 'restarted');
    await until(() => h.rec('s-1').phase === 'running', 'running again');
  });
});

describe('rejoin (FakeAgent)', () => {
  it('the fenced old primary comes back as an echo of the new primary after its restart delay', async () => {
    const h = await running(BASIC, ['kv-1', 'kv-2']);
    h.agent.crash('kv-1');
    await until(() => h.rec('kv-1').phase === 'exited', `kv-1 waits to rejoin (${phases(h)})`);
    expect(h.rec('kv-1').role).toBe('echo');
    const due = h.rec('kv-1').nextRestartAt!;
    expect(h.agent.log.filter((l) => l === 'start kv-1')).toHaveLength(1);
    h.clock.advance(due - h.clock.now());
    await until(() => h.rec('kv-1').phase === 'running', `kv-1 rejoined (${phases(h)})`);
    expect(h.rec('kv-1').role).toBe('echo');
    expect(h.rec('kv-2').role).toBe('primary');
    expect(h.agent.log.filter((l) => l === 'start kv-1')).toHaveLength(2);
  });
});

describe('switchover (FakeAgent)', () => {
  it('a planned switchover promotes the echo and keeps the old primary running as an echo, unfenced', async () => {
    const h = await running(BASIC, ['kv-1', 'kv-2']);
    const d = await h.control.switchover('kv');
    expect(d.outcome.status).toBe('ok');
    expect(d.outcome.detail).toMatch(/^kv-2 serves at epoch 1/);
    expect(h.rec('kv-2')).toMatchObject({ role: 'primary', phase: 'running', epoch: 1 });
    expect(h.rec('kv-1')).toMatchObject({ role: 'echo', phase: 'running' });
    expect(h.agent.running('kv-1')).toBe(true);
    expect(h.agent.log.filter((l) => l.startsWith('fence'))).toEqual([]);
  });

  it('a switchover to a cold echo stops the old primary into standby and re-points the file sync', async () => {
    const yaml = `services:\n  - name: c\n    command: [c]\n    echo: { count: 1, mode: cold }\n`;
    const h = await running(yaml, ['c-1', 'c-2']);
    await h.control.switchover('c', 'c-2');
    expect(h.rec('c-2')).toMatchObject({ role: 'primary', phase: 'running' });
    expect(h.rec('c-1')).toMatchObject({ role: 'echo', phase: 'standby' });
    const sync = h.agent.syncs.get('c');
    expect(sync?.primary).toBe(h.rec('c-2').stateDir);
    expect(sync?.targets.get('c-1')).toBe(h.rec('c-1').stateDir);
  });
});

describe('serving-set benching (FakeAgent)', () => {
  const SET = `services:
  - name: web
    command: [web]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    health: { exec: [check], interval: 1s, failureThreshold: 3 }
    scaling: { min: 2, max: 2 }
    echo: { count: 0, mode: warm }
`;
  const serving = async (h: Harness): Promise<string[]> =>
    (await h.control.services())[0]?.dataPlane?.serving ?? [];

  it('an unhealthy member leaves the router instead of being restarted, and rejoins when healthy', async () => {
    const h = await running(SET, ['web-1', 'web-2']);
    expect((await serving(h)).sort()).toEqual(['web-1', 'web-2']);
    h.agent.unhealthy('web-1', 3);
    await until(() => h.decisions.some((d) => d.kind === 'unready'), 'benched');
    expect(await serving(h)).toEqual(['web-2']);
    expect(h.agent.running('web-1')).toBe(true);
    expect(h.agent.log).not.toContain('stop web-1');
    expect(failovers(h)).toEqual([]);
    h.agent.healthy('web-1');
    await until(() => h.rec('web-1').phase === 'running', 'healthy again');
    expect((await serving(h)).sort()).toEqual(['web-1', 'web-2']);
  });

  it('a member that stays unhealthy out of the set is restarted', async () => {
    const h = await running(SET, ['web-1', 'web-2']);
    h.agent.unhealthy('web-1', 3);
    await until(() => h.decisions.some((d) => d.kind === 'unready'), 'benched');
    h.agent.stillUnhealthy('web-1', 30);
    await until(() => h.agent.log.includes('stop web-1'), 'restarted');
    expect(h.decisions.some((d) => d.kind === 'unhealthy' && d.why.includes('out of the serving set'))).toBe(
      true,
    );
  });
});

describe('a restarted control process (FakeAgent)', () => {
  const base = (over: Partial<InstanceRecord>): InstanceRecord => ({
    id: 'kv-1',
    service: 'kv',
    role: 'primary',
    slot: 0,
    host: 'local',
    phase: 'running',
    ports: { http: 20_100 },
    stateDir: '/data/state/kv-1',
    restarts: [],
    limits: {},
    epoch: 0,
    ...over,
  });
  const handle = (id: string, pid: number): NonNullable<InstanceRecord['handle']> => ({
    instanceId: id,
    service: 'kv',
    host: 'local',
    pid,
    pgid: pid,
    startedAt: 1,
    stdoutPath: '/x',
    stderrPath: '/y',
    limits: {},
    stateDir: `/data/state/${id}`,
  });

  /** A hot primary kv-1 and its echo kv-2, both left running by the earlier control process. */
  const runningPair = (): InstanceRecord[] => [
    base({ id: 'kv-1', pid: 501, handle: handle('kv-1', 501) }),
    base({
      id: 'kv-2',
      role: 'echo',
      slot: 1,
      pid: 502,
      handle: handle('kv-2', 502),
      stateDir: '/data/state/kv-2',
    }),
  ];

  async function seeded(
    records: InstanceRecord[],
    alive: string[],
    extra?: (store: SqliteStateStore) => Promise<void>,
  ): Promise<{ store: SqliteStateStore; dir: string; agent: FakeAgent; clock: ManualClock }> {
    const { store, dir } = await openStore();
    const clock = new ManualClock();
    const agent = new FakeAgent({ clock });
    for (const r of records) {
      await store.put(`instances/${r.id}`, JSON.stringify(r));
      if (alive.includes(r.id) && r.handle) agent.seedRunning(r.handle, Object.values(r.ports));
    }
    await extra?.(store);
    return { store, dir, agent, clock };
  }

  it('adopts the instances an earlier control process left running instead of restarting them', async () => {
    const s = await seeded(runningPair(), ['kv-1', 'kv-2']);
    const h = await startControl(HOT, s);
    await until(() => h.rec('kv-2').phase === 'running' && h.rec('kv-1').phase === 'running', phases(h));
    expect(h.agent.log.filter((l) => l.startsWith('start'))).toEqual([]);
    expect(h.decisions.filter((d) => d.kind === 'adopt').map((d) => d.instance)).toEqual(['kv-1', 'kv-2']);
    // The hot echo's state was compared with the primary's (the mutation log died with the old process).
    expect(h.agent.log).toContain('compare /data/state/kv-1 /data/state/kv-2');
    expect(h.agent.watched('kv-1')).toBe(true);
  });

  for (const [mode, yaml] of [
    ['warm', BASIC],
    ['hot', HOT],
  ] as const) {
    it(`fails over to the ${mode} echo when the primary an earlier control process left died meanwhile, instead of starting a new, empty primary`, async () => {
      const s = await seeded(runningPair(), ['kv-2']);
      const h = await startControl(yaml, s);
      await until(() => h.rec('kv-2').role === 'primary' && h.rec('kv-2').epoch === 1, phases(h));
      expect(await h.store.epoch('kv')).toBe(1);
      const failover = h.decisions.find((d) => d.kind === 'failover');
      expect(failover?.what).toBe('promote kv-2 in place of kv-1');
      expect(failover?.why).toContain('found gone when this control process adopted');
      expect(h.decisions.find((d) => d.kind === 'adopt' && d.instance === 'kv-1')?.what).toContain(
        'is gone; fail over to an echo',
      );
      // No primary was started from nothing in kv-1's slot: only the old primary comes back (as an echo).
      expect(h.decisions.filter((d) => d.kind === 'start' && d.inputs.role === 'primary')).toEqual([]);
      expect(h.rec('kv-1').role).toBe('echo');
    });
  }

  it('rebuilds an adopted hot echo whose state differs from the primary', async () => {
    const s = await seeded(runningPair(), ['kv-1', 'kv-2']);
    s.agent.differences.set('/data/state/kv-1|/data/state/kv-2', [
      { path: 'a.db', kind: 'content' } as never,
    ]);
    const h = await startControl(HOT, s);
    await until(() => h.agent.log.includes('start kv-2'), phases(h));
    expect(h.agent.log).toContain('stop kv-2');
    expect(
      h.decisions.some(
        (d) => d.kind === 'restart' && d.what === 'rebuild echo kv-2 from a snapshot of the primary',
      ),
    ).toBe(true);
    expect(h.agent.log.filter((l) => l === 'start kv-1')).toEqual([]);
  });

  it('rolls an interrupted promotion forward: the promoted echo that runs serves at the new epoch', async () => {
    const intent: PromotionIntent = {
      service: 'kv',
      kind: 'failover',
      from: 'kv-1',
      to: 'kv-2',
      toSlot: 1,
      epoch: 0,
      next: 1,
      at: 1,
      decision: 1,
    };
    const s = await seeded(
      [
        base({ id: 'kv-1', pid: 501, handle: handle('kv-1', 501) }),
        base({
          id: 'kv-2',
          role: 'echo',
          slot: 1,
          pid: 502,
          handle: handle('kv-2', 502),
          stateDir: '/data/state/kv-2',
        }),
      ],
      ['kv-2'], // the old primary died with the control process; the echo runs
      async (store) => {
        await store.put(PROMOTION_PREFIX + 'kv', JSON.stringify(intent));
        await store.bumpEpoch('kv', 0); // the crash came after the epoch compare-and-set
      },
    );
    const h = await startControl(HOT, s);
    await until(() => h.decisions.some((d) => d.kind === 'promotion-recovery'), phases(h));
    const recovery = h.decisions.find((d) => d.kind === 'promotion-recovery');
    expect(recovery?.what).toMatch(/^roll forward the interrupted failover of 'kv': kv-2 serves at epoch 1/);
    expect(h.rec('kv-2')).toMatchObject({ role: 'primary', epoch: 1 });
    expect(await h.store.epoch('kv')).toBe(1);
    expect(await h.store.list(PROMOTION_PREFIX)).toEqual([]);
    // kv-2 was adopted, not restarted.
    expect(h.agent.log.filter((l) => l === 'start kv-2')).toEqual([]);
  });
});
