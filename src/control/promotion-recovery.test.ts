import { describe, expect, it } from 'vitest';
import { planRecovery, type RecoveryFacts } from './promotion-recovery.js';

const E = 4;
const bools = [false, true];

/** Every combination of what a recovering control process can find. */
function allFacts(): RecoveryFacts[] {
  const out: RecoveryFacts[] = [];
  for (const serviceKnown of bools)
    for (const epoch of [E - 1, E, E + 1, E + 2])
      for (const fromRuns of bools)
        for (const toUsable of bools)
          for (const otherEchoRuns of bools)
            out.push({
              serviceKnown,
              epoch,
              intentEpoch: E,
              intentNext: E + 1,
              fromRuns,
              toUsable,
              otherEchoRuns,
            });
  return out;
}

describe('planRecovery (the transition table of an interrupted promotion)', () => {
  it('changes nothing when the epoch never moved and the old primary still runs', () => {
    for (const f of allFacts().filter((f) => f.serviceKnown && f.epoch === E && f.fromRuns))
      expect(planRecovery(f)).toEqual({ action: 'nothing-changed' });
  });

  it('rolls forward to the promoted echo whenever it can serve and something had changed, bumping the epoch only if it had not moved', () => {
    for (const f of allFacts().filter(
      (f) => f.serviceKnown && f.toUsable && (f.epoch === E + 1 || (f.epoch === E && !f.fromRuns)),
    ))
      expect(planRecovery(f)).toEqual({ action: 'promote', who: 'to', bumpEpoch: f.epoch === E });
  });

  it('rolls back to the old primary under the new epoch when the promoted echo is gone', () => {
    const f = { serviceKnown: true, epoch: E + 1, intentEpoch: E, intentNext: E + 1 };
    expect(planRecovery({ ...f, fromRuns: true, toUsable: false, otherEchoRuns: true })).toEqual({
      action: 'promote',
      who: 'from',
      bumpEpoch: false,
    });
  });

  it('promotes another running echo only when neither instance of the promotion runs', () => {
    for (const f of allFacts().filter((f) => planRecovery(f).action === 'promote'))
      if ((planRecovery(f) as { who: string }).who === 'other') expect(f.fromRuns || f.toUsable).toBe(false);
    const f = { serviceKnown: true, epoch: E + 1, intentEpoch: E, intentNext: E + 1 };
    expect(planRecovery({ ...f, fromRuns: false, toUsable: false, otherEchoRuns: true })).toEqual({
      action: 'promote',
      who: 'other',
      bumpEpoch: false,
    });
  });

  it('never leaves the service without a serving instance while one of its instances runs', () => {
    for (const f of allFacts().filter((f) => f.serviceKnown && (f.epoch === E || f.epoch === E + 1))) {
      const plan = planRecovery(f);
      if (f.fromRuns || f.toUsable || f.otherEchoRuns)
        expect(plan.action, JSON.stringify(f)).not.toBe('none-runs');
      else expect(plan).toEqual({ action: 'none-runs' });
    }
  });

  it('drops a stale intent: its service left the spec, or a later promotion moved the epoch further', () => {
    for (const f of allFacts()) {
      const plan = planRecovery(f);
      if (!f.serviceKnown) expect(plan).toEqual({ action: 'drop', reason: 'service-gone' });
      else if (f.epoch !== E && f.epoch !== E + 1)
        expect(plan).toEqual({ action: 'drop', reason: 'epoch-moved' });
      else expect(plan.action).not.toBe('drop');
    }
  });
});
