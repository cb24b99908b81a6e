import { describe, expect, it } from 'vitest';
import type { RouterStats } from '../router/index.js';
import { LATENCY_BUCKETS_MS } from '../router/index.js';
import { Telemetry } from '../telemetry/index.js';
import { countDecisions, metricsSample } from './metrics-sample.js';
import type { ControlDecision, InstanceRecord } from './records.js';
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

const view: ServiceView = {
  name: 'kv',
  epoch: 2,
  echoMode: 'hot',
  desired: { primaries: 1, echoes: 2, shadows: 0 },
  instances: [
    {
      ...rec('kv-0', 'primary', 'running'),
      health: { healthy: true, checkedAt: 0, detail: '', consecutiveFailures: 0 },
    },
    rec('kv-1', 'echo', 'running'),
    rec('kv-2', 'echo', 'exited'),
  ],
  dataPlane: {
    address: '127.0.0.1:1',
    mode: 'http',
    serving: ['kv-0'],
    epoch: 2,
    replication: {
      consistency: 'write-through',
      lastSeq: 9,
      strictRefusals: 0,
      echoes: [
        { instanceId: 'kv-1', inSync: true, appliedSeq: 7, pending: 2, lagMs: 250, applied: 7, failures: 1 },
      ],
    },
  },
  scaling: {
    policy: 'predictive',
    target: 0.6,
    stepMs: 10_000,
    load: 40,
    serving: 1,
    pool: 1,
    capacity: { perInstance: 100, source: 'measured' },
    forecast: { horizonMs: 30_000, mean: 50, lower: 30, upper: 70 },
    confidence: 0.8,
  },
  degraded: false,
};

const buckets = LATENCY_BUCKETS_MS.map(() => 0).concat(0);
buckets[2] = 4;
const router = {
  mode: 'http',
  serving: ['kv-0'],
  waiting: 0,
  backends: [
    {
      id: 'kv-0',
      host: '127.0.0.1',
      port: 1,
      epoch: 2,
      state: 'serving',
      inFlight: 1,
      requests: 4,
      errors: 0,
      latency: { count: 4, sumMs: 3, buckets, p50Ms: 1, p99Ms: 1 },
    },
  ],
  http: {
    requests: 5,
    responses: 4,
    inFlight: 1,
    retries: 1,
    redispatched: 2,
    unavailable: 0,
    intercepted: 0,
    fastPath: 0,
    handedOff: 0,
    errors: { connect: 0 },
  },
  tcp: undefined,
  mirror: { shadows: [], fraction: 0, sent: 0, dropped: 0, skippedBody: 3, failed: 0 },
  warmReads: {
    shadows: ['kv-1'],
    fraction: 0.1,
    sent: 7,
    dropped: 1,
    skippedBody: 0,
    failed: 2,
    completed: 5,
  },
} as unknown as RouterStats;

describe('metricsSample', () => {
  it('turns the service views and router stats into a sample in seconds, with the warm pool and serving counts', () => {
    const s = metricsSample([view], {
      router: (name) => (name === 'kv' ? router : undefined),
      readiness: (id) => (id === 'kv-0' ? 42 : 7),
      eventLoopDelay: { p50Ms: 1, p99Ms: 5, maxMs: 20 },
    });
    expect(s.eventLoopDelay).toEqual({ p50: 0.001, p99: 0.005, max: 0.02 });
    const [svc] = s.services;
    expect(svc).toMatchObject({
      service: 'kv',
      epoch: 2,
      serving: 1,
      warmPool: 1,
      desired: { primary: 1, echo: 2, shadow: 0 },
    });
    // Readiness belongs to primaries only; health only where a verdict exists.
    expect(svc?.instances[0]).toEqual({
      instance: 'kv-0',
      role: 'primary',
      phase: 'running',
      epoch: 2,
      healthy: true,
      readiness: 42,
    });
    expect(svc?.instances[1]).toEqual({ instance: 'kv-1', role: 'echo', phase: 'running', epoch: 2 });
    expect(svc?.router).toMatchObject({ requests: 5, inFlight: 1, retried: 3, mirror: { skipped: 3 } });
    // The cost of cache warming: copies of reads sent to the echoes.
    expect(svc?.router?.warmReads).toEqual({ sent: 7, completed: 5, dropped: 1, failed: 2 });
    expect(svc?.router?.backends[0]?.latency).toEqual({
      bounds: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
      counts: buckets,
      sum: 0.003,
      count: 4,
    });
    expect(svc?.replication?.echoes[0]).toEqual({
      instance: 'kv-1',
      inSync: true,
      lagMutations: 2,
      lagSeconds: 0.25,
      applied: 7,
      failures: 1,
    });
    expect(svc?.scaling).toEqual({
      load: 40,
      target: 0.6,
      capacity: 100,
      forecast: { mean: 50, lower: 30, upper: 70, horizonSeconds: 30 },
      confidence: 0.8,
    });
  });
});

describe('countDecisions', () => {
  it('counts each decision once (not again when settled), and applied scaling actions apart', async () => {
    const listeners: ((d: ControlDecision) => void)[] = [];
    const telemetry = new Telemetry();
    countDecisions(telemetry, { subscribe: (l) => (listeners.push(l), () => undefined) });
    const emit = (d: Partial<ControlDecision>): void => {
      for (const l of listeners)
        l({
          seq: 0,
          at: 0,
          kind: 'start',
          service: 'web',
          what: '',
          why: '',
          inputs: {},
          outcome: { status: 'ok' },
          ...d,
        });
    };
    emit({ seq: 1, kind: 'scale-out', outcome: { status: 'ok' } });
    emit({ seq: 2, kind: 'scale-in', outcome: { status: 'recorded' } });
    emit({ seq: 3, kind: 'start', outcome: { status: 'pending' } });
    emit({ seq: 3, kind: 'start', outcome: { status: 'ok', detail: 'pid 1' } });
    const body = (await telemetry.exposition()).body;
    expect(body).toContain('understudy_decisions_total{service="web",kind="start"} 1');
    expect(body).toContain('understudy_scaling_actions_total{service="web",action="scale-out"} 1');
    expect(body).not.toContain('action="scale-in"');
  });
});

describe('external echoes in the metrics', () => {
  it('exports the lag of each external echo its lag hook read, and nothing for an unknown or failed reading', async () => {
    const external: ServiceView = {
      ...view,
      name: 'cache',
      echoMode: 'external',
      externalEchoes: [
        { instance: 'cache-2', lagBytes: 1234, at: 1 },
        { instance: 'cache-3' },
        { instance: 'cache-4', lagBytes: 9, error: 'the lag hook of cache-4 exited with status 1' },
      ],
    };
    const s = metricsSample([external], {
      router: () => undefined,
      readiness: () => undefined,
      eventLoopDelay: { p50Ms: 0, p99Ms: 0, maxMs: 0 },
    });
    expect(s.services[0]?.externalEchoes).toEqual([
      { instance: 'cache-2', lagBytes: 1234 },
      { instance: 'cache-3' },
      { instance: 'cache-4' },
    ]);
    const telemetry = new Telemetry();
    telemetry.collectFrom(() => s);
    const { body } = await telemetry.exposition();
    expect(body).toContain('understudy_external_echo_lag_bytes{service="cache",instance="cache-2"} 1234');
    expect(body).not.toMatch(/understudy_external_echo_lag_bytes\{[^}]*instance="cache-[34]"/);
  });
});
