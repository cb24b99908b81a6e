import { describe, expect, it } from 'vitest';
import { decideMigration, initialMigrationState, resolveMigrationPolicyOptions } from './migration-policy.js';
import type { MigrationSignals, MigrationState } from './migration-policy.js';
import { decideVertical, echoSizeFraction, resolveVerticalPolicyOptions } from './vertical-policy.js';
import { decideWarmPool, planScaleOut, resolveWarmPoolOptions } from './warm-pool-policy.js';

describe('warm pool', () => {
  const o = resolveWarmPoolOptions({
    capacityPerInstance: 100,
    targetUtilization: 0.5,
    peakFraction: 0.1,
    minSize: 1,
  });
  it('holds enough echoes for the forecast growth within a cold start plus a hedge of the peak', () => {
    // Peak upper 2000 at 50 → 40 serving needed; 30 serving now → 10 growth + 4 hedge.
    const r = decideWarmPool(
      o,
      {
        serving: 30,
        pool: 2,
        load: 1400,
        confidence: 0.9,
        peak: { horizonMs: 120_000, mean: 1800, lower: 1600, upper: 2000 },
      },
      0,
    );
    expect(r.desired).toBe(14);
    expect(r.decisions[0]).toMatchObject({ kind: 'pool-resize', from: 2, to: 14 });
  });
  it('keeps only the hedge when confidence is low', () => {
    const r = decideWarmPool(
      o,
      {
        serving: 30,
        pool: 2,
        load: 1400,
        confidence: 0.1,
        peak: { horizonMs: 120_000, mean: 1800, lower: 1600, upper: 9000 },
      },
      0,
    );
    expect(r.desired).toBe(3); // 28 needed for the load now, 30 serving: hedge ⌈2.8⌉
  });
  it('promotes ready echoes before starting cold', () => {
    expect(planScaleOut(5, 3)).toEqual({ promote: 3, cold: 2 });
    expect(planScaleOut(2, 3)).toEqual({ promote: 2, cold: 0 });
  });
});

describe('vertical', () => {
  const o = resolveVerticalPolicyOptions({
    fullCpuMillis: 1000,
    fullMemoryMiB: 1000,
    echoMinFraction: 0.1,
    echoGrowFrom: 0.5,
  });
  it('keeps echoes minimal until the primary is busy, then grows them to full at 100 %', () => {
    expect(echoSizeFraction(o, 0.2)).toBeCloseTo(0.1);
    expect(echoSizeFraction(o, 0.75)).toBeCloseTo(0.55);
    expect(echoSizeFraction(o, 1)).toBeCloseTo(1);
  });
  it('resizes an echo with its primary and a hot primary by the step, and respects the cooldown', () => {
    const d = decideVertical(
      o,
      [
        {
          id: 'p',
          role: 'primary',
          cpuMillis: 1000,
          memoryMiB: 1000,
          cpuUtilization: 0.9,
          memoryUtilization: 0.4,
        },
        { id: 'e', role: 'echo', cpuMillis: 100, memoryMiB: 100, cpuUtilization: 0, memoryUtilization: 0 },
        {
          id: 'e2',
          role: 'echo',
          cpuMillis: 100,
          memoryMiB: 100,
          cpuUtilization: 0,
          memoryUtilization: 0,
          lastResizeAt: 0,
        },
      ],
      60_000,
    );
    expect(d.map((x) => [x.instance, x.to])).toEqual([
      ['p', 1500],
      ['e', 820],
    ]);
  });
});

describe('migration', () => {
  const o = resolveMigrationPolicyOptions({
    provisionThreshold: 60,
    minConfidence: 0.6,
    switchThreshold: 80,
    criticalUsage: 0.9,
    cancelBelow: 40,
  });
  const sig = (p: Partial<MigrationSignals>): MigrationSignals => ({
    instance: 'api-1',
    readiness: 0,
    confidence: 0.9,
    usage: 0.5,
    targetHost: 'h2',
    echoSynced: false,
    switchedOver: false,
    ...p,
  });
  it('pre-provisions, switches over and retires in order as readiness rises', () => {
    let s: MigrationState = initialMigrationState();
    const kinds: string[] = [];
    const steps: Partial<MigrationSignals>[] = [
      { readiness: 50 },
      { readiness: 65 },
      { readiness: 70, echoSynced: true },
      { readiness: 85, echoSynced: true },
      { readiness: 85, echoSynced: true, switchedOver: true },
    ];
    steps.forEach((p, i) => {
      const r = decideMigration(o, s, sig(p), i * 1000);
      s = r.state;
      kinds.push(...r.decisions.map((d) => d.kind));
      for (const d of r.decisions) expect(d.inputs.readiness).toBe(p.readiness);
    });
    expect(kinds).toEqual(['migrate-provision', 'migrate-switchover', 'migrate-retire']);
  });
  it('does not pre-provision without enough confidence', () => {
    expect(
      decideMigration(o, initialMigrationState(), sig({ readiness: 95, confidence: 0.3 }), 0).decisions,
    ).toEqual([]);
  });
  it('switches when usage reaches the critical threshold below the switch score', () => {
    const s = decideMigration(o, initialMigrationState(), sig({ readiness: 65 }), 0).state;
    const r = decideMigration(o, s, sig({ readiness: 65, usage: 0.95, echoSynced: true }), 1000);
    expect(r.decisions[0]!.kind).toBe('migrate-switchover');
    expect(r.decisions[0]!.reason).toMatch(/critical/);
  });
  it('cancels and retires the echo when readiness falls back', () => {
    const s = decideMigration(o, initialMigrationState(), sig({ readiness: 65 }), 0).state;
    const r = decideMigration(o, s, sig({ readiness: 30 }), 1000);
    expect(r.decisions[0]!.kind).toBe('migrate-cancel');
    expect(r.state.phase).toBe('idle');
  });
});
