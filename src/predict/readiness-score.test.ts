import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { migrationReadinessScore } from './readiness-score.js';
import type { ReadinessInputs } from './readiness-score.js';

const base: ReadinessInputs = {
  cpuUtilization: 50,
  memoryUtilization: 50,
  diskIoLatencyMs: 20,
  historicalFailureRate: 0.1,
  predictedFailureProbability: 0.2,
};
const keys = [
  'cpuUtilization',
  'memoryUtilization',
  'diskIoLatencyMs',
  'historicalFailureRate',
  'predictedFailureProbability',
] as const;
const input = fc.record({
  cpuUtilization: fc.double({ min: -50, max: 200, noNaN: true }),
  memoryUtilization: fc.double({ min: -50, max: 200, noNaN: true }),
  diskIoLatencyMs: fc.double({ min: -10, max: 1000, noNaN: true }),
  historicalFailureRate: fc.double({ min: -1, max: 2, noNaN: true }),
  predictedFailureProbability: fc.double({ min: -1, max: 2, noNaN: true }),
});

describe('migrationReadinessScore', () => {
  it('weights the seed components 30/25/20/15/10', () => {
    const r = migrationReadinessScore({
      cpuUtilization: 100,
      memoryUtilization: 100,
      diskIoLatencyMs: 100,
      historicalFailureRate: 1,
      predictedFailureProbability: 1,
    });
    expect(r.score).toBeCloseTo(100);
    expect(r.contributions).toEqual({
      cpu: 30,
      memory: 25,
      diskLatency: 20,
      failureRate: 15,
      failureProbability: 10,
    });
    expect(migrationReadinessScore(base).contributions.cpu).toBeCloseTo(15);
  });

  it('is continuous at the seed thresholds (50 ms latency, 80 % CPU) and never negative past 100 ms', () => {
    const at = (ms: number): number => migrationReadinessScore({ ...base, diskIoLatencyMs: ms }).score;
    expect(Math.abs(at(50.0001) - at(49.9999))).toBeLessThan(1e-3);
    expect(at(150)).toBeGreaterThanOrEqual(at(100));
    const cpu = (c: number): number => migrationReadinessScore({ ...base, cpuUtilization: c }).score;
    expect(cpu(90)).toBeGreaterThan(cpu(80));
  });

  it('stays within [0, 100] and is monotone in every input (property)', () => {
    fc.assert(
      fc.property(
        input,
        fc.constantFrom(...keys),
        fc.double({ min: 0, max: 500, noNaN: true }),
        (x, key, bump) => {
          const a = migrationReadinessScore(x).score;
          const b = migrationReadinessScore({ ...x, [key]: x[key] + bump }).score;
          expect(a).toBeGreaterThanOrEqual(0);
          expect(a).toBeLessThanOrEqual(100);
          expect(b).toBeGreaterThanOrEqual(a - 1e-9);
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });

  it('normalises custom weights so the score stays bounded', () => {
    const r = migrationReadinessScore(
      { ...base, cpuUtilization: 100 },
      { weights: { cpu: 300, memory: 0, diskLatency: 0, failureRate: 0, failureProbability: 0 } },
    );
    expect(r.score).toBeCloseTo(100);
  });

  it('rejects non-finite inputs and negative weights with a typed error', () => {
    expect(() => migrationReadinessScore({ ...base, cpuUtilization: Number.NaN })).toThrow(
      expect.objectContaining({ code: ErrorCode.PredictInput }),
    );
    expect(() => migrationReadinessScore(base, { weights: { cpu: -1 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.PredictInput }),
    );
  });
});
