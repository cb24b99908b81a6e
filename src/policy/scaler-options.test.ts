import { describe, expect, it } from 'vitest';
import { scalingOptionsFromSpec } from './scaler-options.js';
import type { ScalingSpec } from './scaler-options.js';
import { resolveScalingOptions } from './scaling-step.js';

const spec = (
  over: Partial<ScalingSpec['scaling']> = {},
  shadow: Partial<ScalingSpec['shadow']> = {},
): ScalingSpec => ({
  scaling: {
    min: 2,
    max: 10,
    target: 0.6,
    policy: 'predictive',
    step: 2000,
    interval: 1000,
    coldStart: 4000,
    stabilization: 20_000,
    ...over,
  },
  echo: { count: 1 },
  shadow: { count: 0, onForecast: true, deltaThreshold: 0.3, ...shadow },
});

describe('scalingOptionsFromSpec', () => {
  it('maps the spec onto the scaler and the step around it', () => {
    const o = scalingOptionsFromSpec(spec({ capacity: 400 }));
    expect(o).toEqual({
      scaler: {
        capacityPerInstance: 400,
        targetUtilization: 0.6,
        stepMs: 2000,
        decisionIntervalMs: 1000,
        coldLeadMs: 4000,
        warmLeadMs: 1000,
        scaleInStabilizationMs: 20_000,
        mode: 'act',
        guards: { minCount: 2, maxCount: 10, scaleInCooldownMs: 12_000, actionWindowMs: 120_000 },
        warmPool: { minSize: 1, maxSize: 8 },
      },
      capacity: 400,
      decisionIntervalMs: 1000,
      poolStabilizationMs: 20_000,
      minPool: 1,
      minShadows: 0,
      spikeShadows: true,
      shadowDeltaThreshold: 0.3,
    });
  });

  it('leaves the capacity to be measured when the spec has none (the scaler gets a placeholder)', () => {
    const o = scalingOptionsFromSpec(spec());
    expect(o.capacity).toBeUndefined();
    expect(o.scaler.capacityPerInstance).toBe(1);
    expect(resolveScalingOptions(o).capacity).toBeUndefined();
  });

  it('makes `reactive` never confident and `forecast-only` a dry run', () => {
    expect(scalingOptionsFromSpec(spec({ policy: 'reactive' })).scaler).toMatchObject({
      minConfidence: 2,
      mode: 'act',
    });
    const dry = scalingOptionsFromSpec(spec({ policy: 'forecast-only' })).scaler;
    expect(dry.mode).toBe('forecast-only');
    expect(dry.minConfidence).toBeUndefined();
  });

  it('warms a promotion in at most a second, never longer than a cold start', () => {
    expect(scalingOptionsFromSpec(spec({ coldStart: 300 })).scaler.warmLeadMs).toBe(300);
    expect(scalingOptionsFromSpec(spec({ coldStart: 30_000 })).scaler.warmLeadMs).toBe(1000);
  });

  it('sizes the pool between echo.count and max − min (at least echo.count)', () => {
    const s = spec({ min: 3, max: 3 });
    s.echo.count = 2;
    expect(scalingOptionsFromSpec(s).scaler.warmPool).toEqual({ minSize: 2, maxSize: 2 });
  });
});
