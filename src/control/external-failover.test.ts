// External echoes (echo.mode: external) in the control plane, driven through a FakeAgent whose hooks
// run for real (small sh scripts that note their context in files): the order of the hooks, their
// environment, and what a failing promote hook does.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent, ManualClock } from '../agent/index.js';
import { parseSpecText } from '../config/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';
import type { ControlDecision } from './records.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A hook that writes its UNDERSTUDY_* environment to `<dir>/<hook>-<instance>` and exits `fail` for `failFor`. */
const hook = (dir: string, failFor = 'none'): string =>
  `{ exec: [sh, -c, 'f=${dir}/$UNDERSTUDY_HOOK-$UNDERSTUDY_INSTANCE; { env | grep -E "^(UNDERSTUDY_|KV_)"; echo ARG0=$0; } | sort > $f.tmp; mv $f.tmp $f; [ "$UNDERSTUDY_INSTANCE" != ${failFor} ] || { echo not a replica >&2; exit 1; }', '{instance}'] }`;

/** A lag hook that prints the lag written in `<dir>/lag` (0 while there is no such file). */
const lagFromFile = (dir: string): string =>
  `{ exec: [sh, -c, 'n=$(cat ${dir}/lag 2>/dev/null || echo 0); echo "{\\"lagBytes\\":$n}"'] }`;

async function start(
  echoes: number,
  failPromoteFor?: string,
  o: {
    lag?: (dir: string) => string;
    switchoverExternalMs?: number;
    prepare?: boolean;
    fence?: (dir: string) => string;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-ext-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(() => store.close());
  const clock = new ManualClock();
  const agent = new FakeAgent({ clock });
  const file = join(dir, 'understudy.yaml');
  const yaml = `services:
  - name: kv
    command: [kv]
    ports: { redis: 0 }
    env: { KV_DIR: '{stateDir}' }
    echo:
      count: ${echoes}
      mode: external
      external:
        follow: ${hook(dir)}${o.prepare ? `\n        prepare: ${hook(dir)}` : ''}
        promote: ${hook(dir, failPromoteFor)}
        lag: ${o.lag ? o.lag(dir) : `{ exec: [sh, -c, 'echo "{\\"lagBytes\\":0}"'] }`}${o.fence ? `\n        fence: ${o.fence(dir)}` : ''}
`;
  const control = await ControlPlane.create({
    spec: { spec: parseSpecText(yaml, file), file, dir },
    dataDir: dir,
    store,
    agents: new AgentRegistry([agent]),
    clock,
    ...(o.switchoverExternalMs !== undefined
      ? { timeouts: { switchoverExternalMs: o.switchoverExternalMs } }
      : {}),
  });
  const decisions: ControlDecision[] = [];
  control.decisions.subscribe((d) => {
    const i = decisions.findIndex((x) => x.seq === d.seq);
    if (i >= 0) decisions[i] = { ...d };
    else decisions.push({ ...d });
  });
  cleanups.push(() => control.close());
  await control.start();
  const env = (name: string): Record<string, string> =>
    Object.fromEntries(
      readFileSync(join(dir, name), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  return { control, agent, clock, dir, decisions, env, has: (name: string) => existsSync(join(dir, name)) };
}

/** Real time: the hooks are real processes. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('external echoes', () => {
  it('runs follow on a new echo with the primary in its environment, no file sync, then promote and rejoin on a crash', async () => {
    const h = await start(1);
    await until(() => h.has('follow-kv-2'), 'the follow hook of kv-2');
    const follow = h.env('follow-kv-2');
    expect(follow).toMatchObject({
      UNDERSTUDY_HOOK: 'follow',
      UNDERSTUDY_SERVICE: 'kv',
      UNDERSTUDY_INSTANCE: 'kv-2',
      UNDERSTUDY_PRIMARY_INSTANCE: 'kv-1',
      UNDERSTUDY_REJOIN: '0',
      // The argv's placeholders and the service's env, expanded for the instance the hook acts on.
      ARG0: 'kv-2',
      KV_DIR: follow['UNDERSTUDY_STATE_DIR'],
    });
    expect(follow['KV_DIR']).toMatch(/kv-2$/);
    expect(follow['UNDERSTUDY_PORT']).toBe(follow['UNDERSTUDY_PORT_REDIS']);
    expect(h.agent.log.some((l) => l.startsWith('sync'))).toBe(false);
    await until(
      () => h.decisions.find((d) => d.kind === 'external-follow')?.outcome.status === 'ok',
      'the follow decision settles ok',
    );

    h.agent.crash('kv-1');
    await until(() => h.has('promote-kv-2'), 'the promote hook of kv-2');
    expect(h.env('promote-kv-2')).toMatchObject({
      UNDERSTUDY_INSTANCE: 'kv-2',
      UNDERSTUDY_PRIMARY_INSTANCE: 'kv-1',
      UNDERSTUDY_EPOCH: '1',
    });
    await until(
      () => h.decisions.some((d) => d.kind === 'failover' && d.outcome.status === 'ok'),
      'failover',
    );
    // The deposed primary comes back as an echo after its restart delay and follows the new one
    // (rejoin = the follow hook by default).
    const kv1 = () => h.control.instances().find((i) => i.id === 'kv-1');
    await until(() => kv1()?.phase === 'exited', 'kv-1 waits to rejoin');
    h.clock.advance((kv1()?.nextRestartAt ?? 0) - h.clock.now());
    await until(() => h.has('rejoin-kv-1'), 'kv-1 rejoins');
    expect(h.env('rejoin-kv-1')).toMatchObject({
      UNDERSTUDY_HOOK: 'rejoin',
      UNDERSTUDY_INSTANCE: 'kv-1',
      UNDERSTUDY_PRIMARY_INSTANCE: 'kv-2',
      UNDERSTUDY_REJOIN: '1',
    });
    await until(
      () => h.decisions.find((d) => d.kind === 'external-rejoin')?.outcome.status === 'ok',
      'the rejoin decision settles ok',
    );
  });

  it('moves on to the next echo when the promote hook fails, recording the hook’s error', async () => {
    const h = await start(2, 'kv-2');
    await until(() => h.has('follow-kv-2') && h.has('follow-kv-3'), 'both echoes follow');
    h.agent.crash('kv-1');
    await until(
      () => h.decisions.some((d) => d.kind === 'failover' && d.outcome.status === 'ok'),
      'failover',
    );
    const [first, second] = h.decisions.filter((d) => d.kind === 'failover');
    const promoted = second?.what.includes('kv-3') ? 'kv-3' : 'kv-2';
    expect(promoted).toBe('kv-3');
    expect(first?.outcome).toEqual({
      status: 'failed',
      detail: 'the promote hook of kv-2 exited with status 1: not a replica',
    });
    expect(h.control.instances().find((i) => i.role === 'primary')?.id).toBe('kv-3');
  });

  it('a failover for a lost host does not wait for the old primary’s fence hook (run through that host’s agent, it would wait for a connect timeout)', async () => {
    const h = await start(1, undefined, {
      fence: (dir) =>
        `{ exec: [sh, -c, 'touch ${dir}/fence-started; sleep 3; touch ${dir}/fence-done'], timeout: 10s }`,
    });
    await until(() => h.has('follow-kv-2'), 'the follow hook of kv-2');
    const decision = await h.control.failover.failover('kv', {
      kind: 'host',
      detail: 'no heartbeat from host local',
      evidence: {},
      detectedAt: h.clock.now(),
    });
    expect(decision.outcome.status).toBe('ok');
    expect(h.has('fence-done')).toBe(false);
    expect(decision.inputs['fenceHook']).toBe('not awaited: its host is unreachable (its agent self-fences)');
    // Still run, in the background, for a host that answers after all.
    await until(() => h.has('fence-started'), 'the fence hook runs anyway');
  });

  it('promotes on a switchover only once the lag hook reads 0 bytes behind, and records the lag it waited for', async () => {
    const h = await start(1, undefined, { lag: lagFromFile });
    await until(
      () => h.decisions.find((d) => d.kind === 'external-follow')?.outcome.status === 'ok',
      'kv-2 follows',
    );
    // The echo is behind when the switchover starts: it must not be promoted yet.
    writeFileSync(join(h.dir, 'lag'), '4096');
    const switching = h.control.switchover('kv', 'kv-2');
    await new Promise((r) => setTimeout(r, 600));
    expect(h.has('promote-kv-2')).toBe(false);
    expect(h.control.instances().find((i) => i.role === 'primary')?.id).toBe('kv-1');
    writeFileSync(join(h.dir, 'lag'), '0');
    const decision = await switching;
    expect(h.has('promote-kv-2')).toBe(true);
    expect(decision.outcome.status).toBe('ok');
    expect(decision.inputs).toMatchObject({
      externalLagBytes: 0,
      externalCatchUp: { lagBytesAtCut: 4096, lagBytes: 0 },
    });
    expect((decision.inputs['externalCatchUp'] as { waitedMs: number }).waitedMs).toBeGreaterThan(0);
    expect(decision.outcome.detail).toContain('caught up 4096 bytes of lag');
    expect(h.control.instances().find((i) => i.role === 'primary')?.id).toBe('kv-2');
    // The old primary rejoins as an echo of the new one.
    await until(() => h.has('rejoin-kv-1'), 'kv-1 rejoins');
  });

  it('gives a switchover up when the echo does not catch up in time: nothing promoted, the old primary serves at the new epoch', async () => {
    const h = await start(1, undefined, { lag: lagFromFile, switchoverExternalMs: 400 });
    await until(
      () => h.decisions.find((d) => d.kind === 'external-follow')?.outcome.status === 'ok',
      'kv-2 follows',
    );
    writeFileSync(join(h.dir, 'lag'), '777');
    const err = await h.control.switchover('kv', 'kv-2').then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('UNDERSTUDY_ERR_FAILOVER');
    expect(err?.message).toMatch(
      /echo kv-2 did not catch up within 0.4 s \(last lag 777 bytes\); kv-1 serves again at epoch 1/,
    );
    expect(h.has('promote-kv-2')).toBe(false);
    const kv1 = h.control.instances().find((i) => i.id === 'kv-1');
    expect(kv1).toMatchObject({ role: 'primary', phase: 'running', epoch: 1 });
    expect(h.control.instances().find((i) => i.id === 'kv-2')?.role).toBe('echo');
    const failed = h.decisions.find((d) => d.kind === 'switchover');
    expect(failed?.outcome.status).toBe('failed');
    expect(failed?.inputs).toMatchObject({ externalCatchUp: { lagBytesAtCut: 777, lagBytes: 777 } });
  });

  it('restarts the deposed primary of a switchover through its prepare hook when the spec declares one (a copy made before it starts)', async () => {
    const h = await start(1, undefined, { prepare: true });
    await until(
      () => h.decisions.find((d) => d.kind === 'external-follow')?.outcome.status === 'ok',
      'kv-2 follows',
    );
    const pidBefore = h.control.instances().find((i) => i.id === 'kv-1')?.pid;
    expect(h.has('prepare-kv-1')).toBe(false);
    const decision = await h.control.switchover('kv', 'kv-2');
    expect(decision.outcome.status).toBe('ok');
    await until(() => h.has('prepare-kv-1'), 'the prepare hook of kv-1');
    expect(h.env('prepare-kv-1')).toMatchObject({
      UNDERSTUDY_INSTANCE: 'kv-1',
      UNDERSTUDY_PRIMARY_INSTANCE: 'kv-2',
      UNDERSTUDY_REJOIN: '1',
    });
    const kv1 = () => h.control.instances().find((i) => i.id === 'kv-1');
    await until(() => kv1()?.phase === 'running', 'kv-1 runs again');
    expect(kv1()?.role).toBe('echo');
    expect(kv1()?.pid).not.toBe(pidBefore);
    await until(() => h.has('rejoin-kv-1'), 'kv-1 follows kv-2');
  });
});
