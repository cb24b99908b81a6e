// When another agent takes a host's place (distributed mode: the host's agent restarted on a new API
// address, or registered again after its record lapsed), the control plane's health checks and hang
// watches of that host's instances move to it. Driven through FakeAgents and a ManualClock: no process
// or probe runs; the e2e test with real agents is test/e2e/agent-restart-watch.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentRegistry,
  FakeAgent,
  ManualClock,
  type InstanceWatch,
  type InstanceWatchHandlers,
} from '../agent/index.js';
import { parseSpecText } from '../config/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';
import type { ControlDecision } from './records.js';

/** A FakeAgent that keeps every watch's handlers, so that a test can deliver a verdict late (after the watch ended). */
class LateAgent extends FakeAgent {
  readonly handlers = new Map<string, InstanceWatchHandlers>();
  override watch(watch: InstanceWatch, handlers: InstanceWatchHandlers, signal: AbortSignal): void {
    this.handlers.set(watch.instanceId, handlers);
    super.watch(watch, handlers, signal);
  }
}

const SPEC = `services:
  - name: kv
    command: [kv]
    health: { exec: [check], interval: 1s, failureThreshold: 3 }
    echo: { count: 1 }
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Lets pending promises and immediates run until `cond` holds (event-loop turns, not wall time). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

async function started(): Promise<{
  control: ControlPlane;
  registry: AgentRegistry;
  first: LateAgent;
  clock: ManualClock;
  decisions: ControlDecision[];
}> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-watch-move-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock();
  const first = new LateAgent({ clock, host: 'h1', address: '192.0.2.1' });
  const registry = new AgentRegistry([first]);
  const file = join(dir, 'understudy.yaml');
  const control = await ControlPlane.create({
    spec: { spec: parseSpecText(SPEC, file), file, dir },
    dataDir: dir,
    store,
    agents: registry,
    host: 'h1',
    clock,
  });
  const decisions: ControlDecision[] = [];
  control.decisions.subscribe((d) => {
    const i = decisions.findIndex((x) => x.seq === d.seq);
    if (i >= 0) decisions[i] = { ...d };
    else decisions.push({ ...d });
  });
  cleanups.push(() => control.close());
  await control.start();
  await until(
    () =>
      ['kv-1', 'kv-2'].every((id) =>
        control.instances().some((i) => i.id === id && i.phase === 'running' && first.watched(id)),
      ),
    'kv-1 and kv-2 running and watched',
  );
  return { control, registry, first, clock, decisions };
}

/** The host's next agent: it adopted the instances the first one ran (same pids). */
function nextAgent(control: ControlPlane, clock: ManualClock, address: string): LateAgent {
  const next = new LateAgent({ clock, host: 'h1', address });
  for (const r of control.instances())
    if (r.handle && r.phase === 'running') next.seedRunning({ ...r.handle });
  return next;
}

const watchesOf = (agent: FakeAgent, id: string): number =>
  agent.log.filter((l) => l === `watch ${id}`).length;
const failovers = (decisions: ControlDecision[]): ControlDecision[] =>
  decisions.filter((d) => d.kind === 'failover');

describe('the watches of a host whose agent is replaced', () => {
  it('move to the new agent once: the old ones end, and a hang the new agent reports fails the primary over', async () => {
    const { control, registry, first, clock, decisions } = await started();
    const next = nextAgent(control, clock, '192.0.2.9');
    registry.set(next);
    expect([next.watched('kv-1'), next.watched('kv-2')]).toEqual([true, true]);
    expect([first.watched('kv-1'), first.watched('kv-2')]).toEqual([false, false]);
    // The same agent set again (as a record change that keeps the client would not even do): no new watch.
    registry.set(next);
    expect([watchesOf(next, 'kv-1'), watchesOf(next, 'kv-2')]).toEqual([1, 1]);

    next.hang('kv-1');
    await until(() => failovers(decisions)[0]?.outcome.status === 'ok', 'the failover settled');
    expect(failovers(decisions)[0]?.why).toMatch(/^hang:/);
    expect(control.instances().find((i) => i.id === 'kv-2')?.role).toBe('primary');
    expect(next.log).toContain('fence kv-1');
  });

  it("ignore a verdict of the old agent's watch that arrives after the move", async () => {
    const { control, registry, first, clock, decisions } = await started();
    const oldHandlers = first.handlers.get('kv-1')!;
    registry.set(nextAgent(control, clock, '192.0.2.9'));
    // In flight when the watch moved: a hang verdict and an unhealthy one of the first agent.
    oldHandlers.onHang({
      kind: 'hang',
      at: clock.now(),
      detail: 'no heartbeat from kv-1 (late)',
      evidence: { phi: 20, lastHeartbeatAgoMs: 5000, procState: 'S', failedProbes: 5 },
    });
    oldHandlers.onHealth({
      healthy: false,
      changed: true,
      consecutiveFailures: 3,
      checkedAt: clock.now(),
      last: { ok: false, detail: 'late', latencyMs: 0 },
    });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(failovers(decisions)).toEqual([]);
    expect(decisions.filter((d) => d.kind === 'restart')).toEqual([]);
    expect(control.instances().find((i) => i.id === 'kv-1')).toMatchObject({
      role: 'primary',
      phase: 'running',
    });
  });

  it('are not moved by a control plane that closed (its term ended)', async () => {
    const { control, registry, clock } = await started();
    const next = nextAgent(control, clock, '192.0.2.9');
    await control.close({ leaveRunning: true });
    registry.set(next);
    expect([watchesOf(next, 'kv-1'), watchesOf(next, 'kv-2')]).toEqual([0, 0]);
  });
});
