import { describe, expect, it } from 'vitest';
import { decideHpa, hpaReplicaCount, initialHpaState, resolveHpaOptions } from './hpa-policy.js';
import type { HpaState } from './hpa-policy.js';

// Worked examples from https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
// ("Algorithm details" and "Default Behavior"); metric values in units of the target 100m.
const o = resolveHpaOptions({ target: 0.1 });
const obs = (ready: number, each: number, unready = 0, missing = 0) => ({
  currentReplicas: ready + unready + missing,
  readyPods: ready,
  metricSum: ready * each,
  unreadyPods: unready,
  missingPods: missing,
});

describe('hpaReplicaCount', () => {
  it('doubles the replicas when the metric is twice the target (200m vs 100m)', () => {
    expect(hpaReplicaCount(o, obs(4, 0.2))).toBe(8);
  });
  it('halves the replicas when the metric is half the target (50m vs 100m)', () => {
    expect(hpaReplicaCount(o, obs(8, 0.05))).toBe(4);
  });
  it('skips scaling while the ratio is within the 0.1 tolerance', () => {
    expect(hpaReplicaCount(o, obs(10, 0.109))).toBe(10);
    expect(hpaReplicaCount(o, obs(10, 0.091))).toBe(10);
    expect(hpaReplicaCount(o, obs(10, 0.112))).toBe(12);
  });
  it('counts not-yet-ready pods as 0 % on a scale-up, dampening it', () => {
    // 3 ready at 150 % of target, 1 starting: (4.5 / 4) = 1.125 → ceil(1.125 × 4) = 5.
    expect(hpaReplicaCount(o, obs(3, 0.15, 1))).toBe(5);
  });
  it('takes no action when counting unready pods brings the ratio within the tolerance', () => {
    // 3 ready at 150 %, 2 starting: 4.5 / 5 = 0.9 → within tolerance → stays 5.
    expect(hpaReplicaCount(o, obs(3, 0.15, 2))).toBe(5);
  });
  it('treats missing metrics as 100 % on a scale-down', () => {
    // 3 ready at 50 %, 1 without metrics: (1.5 + 1) / 4 = 0.625 → ceil(2.5) = 3.
    expect(hpaReplicaCount(o, obs(3, 0.05, 0, 1))).toBe(3);
  });
  it('takes no action when missing metrics reverse the direction', () => {
    // 1 ready at 80 %, 3 missing counted as 100 %: 3.8 / 4 = 0.95 → within tolerance.
    expect(hpaReplicaCount(o, obs(1, 0.08, 0, 3))).toBe(4);
  });
});

describe('decideHpa', () => {
  it('limits a scale-up to max(100 %, 4 pods) per 15 s', () => {
    let s = initialHpaState();
    const r1 = decideHpa(o, s, obs(2, 1.0), 0); // wants 20
    expect(r1.desired).toBe(6); // 2 + 4 > 2 × 2
    s = r1.state;
    const r2 = decideHpa(o, s, obs(6, 1.0 / 3), 15_000); // still wants 20
    expect(r2.desired).toBe(12); // 6 × 2 > 6 + 4
    const r3 = decideHpa(o, r2.state, obs(12, 1 / 6), 30_000);
    expect(r3.desired).toBe(20);
  });
  it('scales down only to the highest recommendation of the last 300 s', () => {
    let s: HpaState = initialHpaState();
    s = decideHpa(o, s, obs(10, 0.1), 0).state; // recommendation 10
    const r1 = decideHpa(o, s, obs(10, 0.05), 15_000); // wants 5, but 10 was recommended 15 s ago
    expect(r1.desired).toBe(10);
    let state = r1.state;
    let desired = 10;
    for (let t = 30_000; t < 300_000; t += 15_000) {
      const r = decideHpa(o, state, obs(10, 0.05), t);
      state = r.state;
      desired = r.desired;
      expect(desired).toBe(10);
    }
    const later = decideHpa(o, state, obs(10, 0.05), 300_000); // the recommendation at 0 is now outside the window
    expect(later.desired).toBe(5);
    expect(later.decisions[0]?.kind).toBe('scale-in');
  });
  it('does nothing between sync periods', () => {
    const r1 = decideHpa(o, initialHpaState(), obs(4, 0.2), 0);
    const r2 = decideHpa(o, r1.state, obs(8, 0.4), 5_000);
    expect(r2.desired).toBe(8);
    expect(r2.decisions).toEqual([]);
  });
  it('keeps within minReplicas and maxReplicas', () => {
    const bounded = resolveHpaOptions({ target: 0.1, minReplicas: 2, maxReplicas: 5 });
    expect(decideHpa(bounded, initialHpaState(), obs(4, 0.2), 0).desired).toBe(5);
    expect(decideHpa(bounded, initialHpaState(), obs(4, 0.01), 0).desired).toBe(2);
  });
});
