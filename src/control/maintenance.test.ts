// Maintenance mode and the operator verbs of the control plane (pause, resume, failover --to, restart
// --force), driven through a FakeAgent and a ManualClock: no process starts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent, ManualClock } from '../agent/index.js';
import { parseSpecText, type LoadedSpec } from '../config/index.js';
import { ErrorCode } from '../errors/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';
import type { ControlDecision, InstanceRecord } from './records.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Harness {
  control: ControlPlane;
  agent: FakeAgent;
  clock: ManualClock;
  decisions: ControlDecision[];
  rec(id: string): InstanceRecord;
}

async function openStore(): Promise<{ store: SqliteStateStore; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-maint-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

async function startControl(yaml: string, at?: { store: SqliteStateStore; dir: string }): Promise<Harness> {
  const { store, dir } = at ?? (await openStore());
  const clock = new ManualClock();
  const agent = new FakeAgent({ clock });
  const file = join(dir, 'understudy.yaml');
  const spec: LoadedSpec = { spec: parseSpecText(yaml, file), file, dir };
  const control = await ControlPlane.create({
    spec,
    dataDir: dir,
    store,
    agents: new AgentRegistry([agent]),
    clock,
  });
  const decisions: ControlDecision[] = [];
  control.decisions.subscribe((d) => {
    const i = decisions.findIndex((x) => x.seq === d.seq);
    if (i >= 0) decisions[i] = { ...d };
    else decisions.push({ ...d });
  });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await control.close();
  });
  await control.start();
  const rec = (id: string): InstanceRecord => {
    const r = control.instances().find((i) => i.id === id);
    if (!r) throw new Error(`no instance ${id}`);
    return r;
  };
  const h = { control, agent, clock, decisions, rec };
  // close() once, even when a test closes it itself
  const close = control.close.bind(control);
  control.close = async () => {
    closed = true;
    await close();
  };
  return h;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

const TWO_ECHOES = `services:
  - name: kv
    command: [kv]
    echo: { count: 2 }
`;

async function running(
  yaml: string,
  ids: string[],
  at?: { store: SqliteStateStore; dir: string },
): Promise<Harness> {
  const h = await startControl(yaml, at);
  await until(
    () => ids.every((id) => h.control.instances().some((i) => i.id === id && i.phase === 'running')),
    'running',
  );
  return h;
}

const failovers = (h: Harness): ControlDecision[] => h.decisions.filter((d) => d.kind === 'failover');

describe('pause (maintenance mode)', () => {
  it("a paused service's crashed primary is not replaced: a skipped failover says what would have happened", async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    await h.control.pause('kv', 'upgrading the disk');
    h.agent.crash('kv-1');
    await until(() => h.rec('kv-1').phase === 'exited', 'exit observed');
    const [skipped] = failovers(h);
    expect(skipped?.outcome).toEqual({ status: 'skipped', detail: 'service paused' });
    expect(skipped?.what).toMatch(/^\(paused\) promote kv-[23] in place of kv-1$/);
    expect(skipped?.why).toMatch(/^crash: .*the service is paused/);
    expect(h.rec('kv-2').role).toBe('echo');
    expect(h.rec('kv-3').role).toBe('echo');
    expect(h.rec('kv-1').role).toBe('primary');
    expect(failovers(h)).toHaveLength(1);
  });

  it('resume carries out the failover skipped while paused, when the primary is still down', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    await h.control.pause('kv', 'maintenance');
    h.agent.crash('kv-1');
    await until(() => h.rec('kv-1').phase === 'exited', 'exit observed');
    const resumed = await h.control.resume('kv', 'done');
    expect(resumed).toMatchObject({
      kind: 'resume',
      outcome: { status: 'ok' },
      inputs: { pendingFailover: { instance: 'kv-1', carriedOut: true } },
    });
    await until(() => failovers(h)[1]?.outcome.status === 'ok', 'failover settled after resume');
    const promoted = failovers(h)[1]?.inputs.to as string;
    expect(['kv-2', 'kv-3']).toContain(promoted);
    expect(h.rec(promoted).role).toBe('primary');
    expect(h.rec('kv-1').role).toBe('echo');
    expect(h.control.pauseOf('kv')).toBeUndefined();
  });

  it('resume drops the skipped failover when the primary was restarted in place meanwhile', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    await h.control.pause('kv', 'maintenance');
    h.agent.crash('kv-1');
    await until(() => h.rec('kv-1').phase === 'exited', 'exit observed');
    h.clock.advance(h.rec('kv-1').nextRestartAt! - h.clock.now());
    await until(() => h.rec('kv-1').phase === 'running', 'restarted in place');
    const resumed = await h.control.resume('kv', 'done');
    expect(resumed.inputs).toMatchObject({ pendingFailover: { instance: 'kv-1', carriedOut: false } });
    expect(resumed.why).toMatch(/dropped: it is running again/);
    expect(failovers(h).map((d) => d.outcome.status)).toEqual(['skipped']);
    expect(h.rec('kv-1').role).toBe('primary');
  });

  it('a pause is stored: a restarted control process still holds the service and shows it', async () => {
    const at = await openStore();
    const first = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3'], at);
    const d = await first.control.pause('kv', 'kernel update');
    expect(d).toMatchObject({ kind: 'pause', outcome: { status: 'ok' } });
    await first.control.close();
    const second = await startControl(TWO_ECHOES, at);
    expect(second.control.pauseOf('kv')).toMatchObject({ reason: 'kernel update' });
    const [view] = await second.control.services();
    expect(view?.paused).toMatchObject({ reason: 'kernel update' });
  });

  it('pausing an unknown service is a not-found error', async () => {
    const h = await running(TWO_ECHOES, ['kv-1']);
    await expect(h.control.pause('nope', 'x')).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});

describe('failover --to', () => {
  it('promotes the chosen echo, not the best one', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    const d = await h.control.forceFailover('kv', 'test', 'kv-3');
    expect(d.outcome.status).toBe('ok');
    expect(d.inputs).toMatchObject({ from: 'kv-1', to: 'kv-3', epoch: 1 });
    expect(h.rec('kv-3').role).toBe('primary');
    expect(h.rec('kv-2').role).toBe('echo');
  });

  it('refuses an unknown target and one that is not an echo, naming the candidates', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    await expect(h.control.forceFailover('kv', 't', 'kv-9')).rejects.toMatchObject({
      code: ErrorCode.NotFound,
    });
    await expect(h.control.forceFailover('kv', 't', 'kv-1')).rejects.toMatchObject({
      code: ErrorCode.Failover,
      message: expect.stringMatching(
        /'kv-1' cannot take over 'kv' \(primary, running\); candidates: kv-[23], kv-[23]/,
      ),
    });
    expect(h.rec('kv-1').role).toBe('primary');
  });
});

describe('restart', () => {
  it('refuses to restart a primary that serves alone unless forced; an echo restarts freely', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    await expect(h.control.restartInstance('kv-1', 'x')).rejects.toMatchObject({ code: ErrorCode.Unsafe });
    expect(h.agent.log.filter((l) => l === 'start kv-1')).toHaveLength(1);
    const echo = await h.control.restartInstance('kv-2', 'x');
    expect(echo.outcome.status).toBe('ok');
    const forced = await h.control.restartInstance('kv-1', 'x', true);
    expect(forced).toMatchObject({ kind: 'restart', inputs: { force: true } });
    expect(h.agent.log.filter((l) => l === 'start kv-1')).toHaveLength(2);
  });
});

describe('reload', () => {
  it('applies a new echo count and health interval live: a new echo starts, the instances are watched again', async () => {
    const yaml = (echoes: number, interval: string): string => `services:
  - name: kv
    command: [kv]
    health: { exec: [check], interval: ${interval} }
    echo: { count: ${echoes} }
    ports: { http: 0 }
`;
    const h = await running(yaml(1, '1s'), ['kv-1', 'kv-2']);
    const watches = (): number => h.agent.log.filter((l) => l === 'watch kv-1').length;
    const before = watches();
    const next = parseSpecText(yaml(2, '250ms'), '/tmp/understudy.yaml');
    const { decision, plan } = await h.control.reload({
      spec: next,
      file: '/tmp/understudy.yaml',
      dir: '/tmp',
    });
    expect(plan.needsRestart).toEqual([]);
    expect(decision).toMatchObject({ kind: 'reload', outcome: { status: 'ok' } });
    expect(decision.why).toMatch(/kv\.echo\.count: 1 → 2/);
    expect(decision.why).toMatch(/kv\.health\.interval: 1000 → 250/);
    expect(h.control.specs[0]?.health?.interval).toBe(250);
    expect(watches()).toBe(before + 1);
    await until(
      () => h.control.instances().some((i) => i.id === 'kv-3' && i.phase === 'running'),
      'kv-3 started',
    );
  });

  it('keeps the running values of fields that need a restart, and says which', async () => {
    const h = await running(TWO_ECHOES, ['kv-1', 'kv-2', 'kv-3']);
    const next = parseSpecText(TWO_ECHOES.replace('[kv]', '[kv2]'), '/tmp/understudy.yaml');
    const { decision } = await h.control.reload({ spec: next, file: '/tmp/understudy.yaml', dir: '/tmp' });
    expect(decision).toMatchObject({
      outcome: { status: 'recorded' },
      inputs: { needsRestart: [{ service: 'kv', field: 'command' }] },
    });
    expect(h.control.specs[0]?.command).toEqual(['kv']);
  });
});
