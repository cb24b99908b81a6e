// The live autoscaler and the simulator make the same decisions on the same inputs: both call
// policy's scalingStep with the options scalingOptionsFromSpec derives from the spec.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serviceSchema } from '../config/index.js';
import type { ServiceSpec } from '../config/index.js';
import { scalingOptionsFromSpec } from '../policy/index.js';
import type { ScalingCounts } from '../policy/index.js';
import type { AgentRegistry } from '../agent/index.js';
import { PredictiveController, readTraceFile, simulate } from '../sim/index.js';
import type { ControllerOutput, ScalingController, ServiceView } from '../sim/index.js';
import { ServiceAutoscaler, type AutoscalerHost } from './autoscaler.js';
import type { DesiredCounts } from './reconcile.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import type { ServiceDataPlane } from './service-data-plane.js';

const TICK_MS = 1000;
const START_MS = 1_700_000_000_000;
/** Minutes of the Crane trace replayed, one per tick. */
const MINUTES = 360;

function spec(overrides: { stabilization?: string } = {}): ServiceSpec {
  return serviceSchema.parse({
    name: 'api',
    command: ['node', 'server.mjs'],
    ports: { http: 0 },
    routing: { listen: '127.0.0.1:0' },
    echo: { count: 1, mode: 'warm' },
    scaling: {
      min: 1,
      max: 12,
      target: 0.6,
      capacity: 100,
      step: '5s',
      interval: '1s',
      coldStart: '5s',
      stabilization: overrides.stabilization ?? '20s',
    },
    shadow: { onForecast: true },
  });
}

/** One step of the world the autoscaler looks at: the load of the tick and the instances running. */
interface Observed {
  now: number;
  view: ServiceView;
}

/** What a policy decided, in a form both sides can be compared in. */
type Entry =
  | { at: number; kind: string; from: number; to: number; applied: boolean }
  | { at: number; kind: 'shadow-create' | 'shadow-retire' };

/** Runs the simulator over the trace, recording what its controller observed and decided at each tick. */
function simulated(
  load: Float64Array,
  s: ServiceSpec,
): { observed: Observed[]; entries: Entry[]; counts: ScalingCounts[] } {
  const inner = new PredictiveController(scalingOptionsFromSpec(s), {
    serving: s.scaling.min,
    echoes: s.echo.count,
    shadows: s.shadow.count,
  });
  const observed: Observed[] = [];
  const entries: Entry[] = [];
  const counts: ScalingCounts[] = [];
  const recording: ScalingController = {
    name: inner.name,
    decide(now: number, view: ServiceView): ControllerOutput {
      observed.push({ now, view: { ...view } });
      const out = inner.decide(now, view);
      counts.push({ serving: out.serving, echoes: out.pool ?? 0, shadows: out.shadows ?? 0 });
      for (const r of out.records ?? []) {
        if (r.type === 'decision') {
          const d = r.decision;
          entries.push({ at: d.at, kind: d.kind, from: d.from, to: d.to, applied: d.applied });
        } else if (r.type === 'spike-shadow') entries.push({ at: r.at, kind: r.change });
      }
      return out;
    },
  };
  simulate([{ name: 'api', load, controller: recording, initial: s.scaling.min }], {
    tickMs: TICK_MS,
    startMs: START_MS,
    capacityPerInstance: s.scaling.capacity ?? 100,
    coldStartMs: s.scaling.coldStart,
    warmStartMs: 1000,
  });
  return { observed, entries, counts };
}

function instance(id: string, role: InstanceRecord['role'], slot: number, ready: boolean): InstanceRecord {
  return {
    id,
    service: 'api',
    role,
    slot,
    host: 'local',
    phase: ready ? 'running' : 'starting',
    ports: {},
    stateDir: '',
    restarts: [],
    limits: {},
    epoch: 0,
  };
}

/**
 * Drives the live autoscaler through the same observations: a fake clock, a router whose request counter
 * grows by each tick's load, the instances the simulator had, and a host that records what it is told.
 */
async function live(
  observed: readonly Observed[],
  s: ServiceSpec,
  paused = false,
): Promise<{
  entries: Entry[];
  counts: ScalingCounts[];
  recorded: ControlDecision[];
  scaler: ServiceAutoscaler;
  end: number;
}> {
  let requests = 0;
  // The fake clock: the decision log stamps a record without a time with it, as DecisionLog does with its own.
  let clock = observed[0]!.now - TICK_MS;
  let current: ServiceView = observed[0]!.view;
  let desired: DesiredCounts = { serving: s.scaling.min, echoes: s.echo.count, shadows: s.shadow.count };
  const recorded: ControlDecision[] = [];
  const plane = {
    router: {
      stats: () => ({ http: { requests }, mirror: { completed: 0, shadows: [], fraction: 1 } }),
    },
  } as unknown as ServiceDataPlane;
  const host: AutoscalerHost = {
    agents: {} as AgentRegistry,
    decisions: {
      record: (d) => {
        const full = { ...d, seq: recorded.length + 1, at: d.at ?? clock };
        recorded.push(full);
        return full;
      },
    },
    instancesOf: () => {
      const v = current;
      const out: InstanceRecord[] = [];
      let slot = 0;
      for (let k = 0; k < v.ready + v.starting; k++)
        out.push(instance(`p${k}`, 'primary', slot++, k < v.ready));
      for (let k = 0; k < v.poolReady + v.poolStarting; k++)
        out.push(instance(`e${k}`, 'echo', slot++, k < v.poolReady));
      return out;
    },
    dataPlane: () => plane,
    servingCores: () => undefined,
    desired: () => desired,
    apply: async (_service, next, change) => {
      await change();
      desired = next;
    },
    promoteIntoServing: () => Promise.resolve(),
    demoteToPool: () => Promise.resolve(),
    busy: () => false,
    paused: () => paused,
  };
  const scaler = new ServiceAutoscaler(s, host);
  // The first sample only starts the request-rate measurement.
  await scaler.tick(observed[0]!.now - TICK_MS);
  const counts: ScalingCounts[] = [];
  for (const o of observed) {
    current = o.view;
    clock = o.now;
    requests += o.view.load * (TICK_MS / 1000);
    await scaler.tick(o.now);
    counts.push({ ...desired });
  }
  const entries: Entry[] = [];
  if (paused) return { entries, counts, recorded, scaler, end: clock };
  for (const d of recorded) {
    if (d.kind === 'shadow-create' || d.kind === 'shadow-retire') {
      entries.push({ at: d.at, kind: d.kind });
      continue;
    }
    const m = /^(\(not applied\) )?([a-z-]+): (?:serving set|warm pool) (\d+) → (\d+)$/.exec(d.what);
    if (!m) throw new Error(`unexpected decision from the live autoscaler: ${d.kind}: ${d.what}`);
    entries.push({
      at: d.at,
      kind: m[2]!,
      from: Number(m[3]),
      to: Number(m[4]),
      applied: m[1] === undefined,
    });
  }
  return { entries, counts, recorded, scaler, end: clock };
}

describe('live autoscaler and simulator', () => {
  it('decide the same, decision for decision, on six hours of a real trace (Crane cpu_0)', async () => {
    const trace = await readTraceFile(join(import.meta.dirname, '../../bench/data/traces/crane/cpu_0.csv'));
    // Integer requests/s, so that the live side's rate (a counter difference over one second) is exact.
    const load = Float64Array.from(trace.values.subarray(0, MINUTES), (v) => Math.round(v * 6));
    const s = spec();
    const sim = simulated(load, s);
    const got = await live(sim.observed, s);
    expect(got.entries).toEqual(sim.entries);
    expect(got.counts).toEqual(sim.counts);
    // The trace is not trivial: the serving set and the pool move both ways, and a spike shadow comes and goes.
    const kinds = new Set(sim.entries.map((e) => e.kind));
    for (const k of ['scale-out', 'scale-in', 'pool-resize', 'shadow-create', 'shadow-retire'])
      expect(kinds).toContain(k);
    // Its forecasts were paired with the load that came at their target times: the 360 one-second
    // ticks give both windows enough resolved forecasts for figures a person can judge.
    const acc = got.scaler.accuracy(got.end);
    expect(acc.day.enough).toBe(true);
    expect(acc.day.pairs).toBeGreaterThan(100);
    expect(acc.hour.pairs).toBe(acc.day.pairs);
    expect(acc.day.mase).toBeGreaterThan(0);
    expect(acc.day.coverage).toBeGreaterThan(0);
    expect(acc.day.coverage).toBeLessThanOrEqual(1);
  });

  it('of a paused service: every change the policy wanted is recorded as skipped and none is applied', async () => {
    const trace = await readTraceFile(join(import.meta.dirname, '../../bench/data/traces/crane/cpu_0.csv'));
    const load = Float64Array.from(trace.values.subarray(0, 120), (v) => Math.round(v * 6));
    const s = spec();
    const sim = simulated(load, s);
    const got = await live(sim.observed, s, true);
    const initial = { serving: s.scaling.min, echoes: s.echo.count, shadows: s.shadow.count };
    expect(got.counts.every((c) => c.serving === initial.serving && c.echoes === initial.echoes)).toBe(true);
    const skipped = got.recorded.filter((d) => d.outcome.status === 'skipped');
    expect(skipped.length).toBeGreaterThan(0);
    for (const d of skipped) {
      expect(d.what).toMatch(/^\(paused\) (scale-out|scale-in|pool-resize): /);
      expect(d.outcome.detail).toBe('service paused');
    }
    expect(got.recorded.filter((d) => d.outcome.status === 'ok')).toEqual([]);
  });
});
