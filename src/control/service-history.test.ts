import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from './records.js';
import { historySample, ServiceHistory } from './service-history.js';
import type { ServiceView } from './service-view.js';

function rec(id: string, role: InstanceRecord['role'], phase: InstanceRecord['phase']): InstanceRecord {
  return {
    id,
    service: 'kv',
    role,
    phase,
    slot: 0,
    host: 'local',
    ports: {},
    stateDir: '',
    restarts: [],
    limits: {},
    epoch: 2,
  };
}

const view = (name: string, epoch = 2): ServiceView => ({
  name,
  epoch,
  echoMode: 'hot',
  desired: { primaries: 2, echoes: 1, shadows: 0 },
  instances: [
    rec('kv-0', 'primary', 'running'),
    rec('kv-1', 'primary', 'running'),
    rec('kv-2', 'echo', 'standby'),
    rec('kv-3', 'echo', 'exited'),
  ],
  dataPlane: {
    address: '127.0.0.1:1',
    mode: 'http',
    serving: ['kv-0', 'kv-1'],
    epoch,
    replication: {
      consistency: 'async',
      lastSeq: 9,
      strictRefusals: 0,
      echoes: [
        { instanceId: 'kv-2', inSync: true, appliedSeq: 7, pending: 2, lagMs: 250, applied: 7, failures: 0 },
        { instanceId: 'kv-3', inSync: false, appliedSeq: 3, pending: 6, lagMs: 40, applied: 3, failures: 0 },
      ],
    },
  },
  scaling: {
    policy: 'predictive',
    target: 0.5,
    stepMs: 1000,
    load: 40,
    serving: 2,
    pool: 1,
    capacity: { perInstance: 100, source: 'measured' },
    forecast: { horizonMs: 30_000, mean: 50, lower: 30, upper: 70 },
    shadow: { liveLoad: 0.4, shadowLoad: 0.5, delta: 0.25, shadowUtilisation: 0.3, shadows: 1 },
  },
  degraded: false,
});

describe('historySample', () => {
  it('charts serving, warm pool, load against capacity at target, forecast, shadow and the largest lags', () => {
    const s = historySample(view('kv'), 1234);
    expect(s).toEqual({
      at: 1234,
      epoch: 2,
      degraded: false,
      serving: 2,
      warmPool: 1,
      load: 40,
      capacity: 100, // 100 requests/s × 2 serving × 0.5 target
      forecast: { mean: 50, lower: 30, upper: 70, horizonMs: 30_000 },
      shadow: { live: 0.4, shadow: 0.5 },
      replicationLagMs: 250,
      replicationLagMutations: 6,
    });
  });

  it('leaves out what a service without scaling or replication does not measure', () => {
    const { scaling: _s, dataPlane: _d, ...bare } = view('kv');
    const s = historySample(bare, 1);
    expect(Object.keys(s).sort()).toEqual(['at', 'degraded', 'epoch', 'serving', 'warmPool']);
  });
});

describe('ServiceHistory', () => {
  it('keeps at most `capacity` samples per service, the newest', () => {
    const h = new ServiceHistory({ capacity: 3 });
    for (let t = 1; t <= 5; t++) h.record([view('a', t), view('b')], t * 1000);
    expect(h.samples('a')!.map((s) => s.epoch)).toEqual([3, 4, 5]);
    expect(h.samples('b')).toHaveLength(3);
  });

  it('returns only the samples after a time, and nothing for a service never sampled', () => {
    const h = new ServiceHistory();
    for (let t = 1; t <= 5; t++) h.record([view('a')], t * 1000);
    expect(h.samples('a', 3000)!.map((s) => s.at)).toEqual([4000, 5000]);
    expect(h.samples('a', 5000)).toEqual([]);
    expect(h.samples('nope')).toBeUndefined();
  });
});
