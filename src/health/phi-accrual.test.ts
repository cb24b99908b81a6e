import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhiAccrualDetector } from './phi-accrual.js';

function regular(intervalMs: number, beats: number): PhiAccrualDetector {
  const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: intervalMs });
  for (let i = 0; i <= beats; i++) d.heartbeat(i * intervalMs);
  return d;
}

describe('PhiAccrualDetector', () => {
  it('is not suspicious right after a heartbeat', () => {
    const d = regular(100, 50);
    expect(d.phi(5000)).toBeLessThan(0.5);
  });

  it('grows suspicion as the silence lengthens past the usual interval', () => {
    const d = regular(100, 50);
    const last = 5000;
    expect(d.phi(last + 100)).toBeLessThan(1);
    expect(d.phi(last + 200)).toBeGreaterThan(3);
    expect(d.phi(last + 400)).toBeGreaterThan(8);
  });

  it('tolerates more silence when heartbeats have been irregular', () => {
    const steady = regular(100, 100);
    const jittery = new PhiAccrualDetector();
    let t = 0;
    for (let i = 0; i < 100; i++) {
      t += i % 2 === 0 ? 40 : 160;
      jittery.heartbeat(t);
    }
    expect(jittery.phi(t + 250)).toBeLessThan(steady.phi(10_000 + 250));
  });

  it('is monotone in elapsed time and never NaN', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 0, max: 10_000 }),
        (gaps, extra) => {
          const d = new PhiAccrualDetector();
          let t = 0;
          for (const g of gaps) d.heartbeat((t += g));
          const a = d.phi(t + extra);
          const b = d.phi(t + extra + 50);
          return Number.isFinite(a) && Number.isFinite(b) && b >= a;
        },
      ),
    );
  });
});
