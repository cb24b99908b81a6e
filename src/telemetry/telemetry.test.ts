import { describe, expect, it } from 'vitest';
import { Telemetry } from './telemetry.js';
import type { ServiceSample, TelemetrySample } from './telemetry-sample.js';

function service(overrides: Partial<ServiceSample> = {}): ServiceSample {
  return {
    service: 'kv',
    epoch: 3,
    degraded: false,
    desired: { primary: 1, echo: 1, shadow: 0 },
    serving: 1,
    warmPool: 1,
    instances: [
      { instance: 'kv-0', role: 'primary', phase: 'running', epoch: 3, healthy: true },
      { instance: 'kv-1', role: 'echo', phase: 'running', epoch: 0 },
    ],
    ...overrides,
  };
}

/** The value of one series line of an exposition (undefined when the series is absent). */
function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Telemetry', () => {
  it('renders the collected metrics from the sample taken for each scrape', async () => {
    let sample: TelemetrySample = {
      services: [service()],
      eventLoopDelay: { p50: 0.001, p99: 0.004, max: 0.02 },
    };
    const t = new Telemetry();
    t.collectFrom(() => sample);
    const first = (await t.exposition()).body;
    expect(value(first, 'understudy_instance_role{service="kv",instance="kv-0",role="primary"}')).toBe(1);
    expect(value(first, 'understudy_instance_role{service="kv",instance="kv-1",role="echo"}')).toBe(1);
    expect(value(first, 'understudy_instance_healthy{service="kv",instance="kv-0",role="primary"}')).toBe(1);
    // No verdict yet: no series rather than a made-up 0.
    expect(first).not.toContain('understudy_instance_healthy{service="kv",instance="kv-1"');
    expect(value(first, 'understudy_service_epoch{service="kv"}')).toBe(3);
    expect(value(first, 'understudy_service_paused{service="kv"}')).toBe(0);
    expect(value(first, 'understudy_control_event_loop_delay_seconds{stat="p99"}')).toBe(0.004);

    // kv-0 failed over to kv-1: the old series go, the new ones come.
    sample = {
      services: [
        service({
          epoch: 4,
          degraded: true,
          paused: true,
          instances: [{ instance: 'kv-1', role: 'primary', phase: 'running', epoch: 4, healthy: true }],
        }),
      ],
    };
    const second = (await t.exposition()).body;
    expect(second).not.toContain('instance="kv-0"');
    expect(value(second, 'understudy_instance_role{service="kv",instance="kv-1",role="primary"}')).toBe(1);
    expect(value(second, 'understudy_service_degraded{service="kv"}')).toBe(1);
    expect(value(second, 'understudy_service_paused{service="kv"}')).toBe(1);
    expect(second).not.toContain('understudy_control_event_loop_delay_seconds{');
  });

  it('exposes a router histogram with cumulative buckets, +Inf, sum and count in seconds', async () => {
    const t = new Telemetry();
    t.collectFrom(() => ({
      services: [
        service({
          router: {
            mode: 'http',
            waiting: 0,
            requests: 10,
            inFlight: 0,
            unavailable: 1,
            retried: 2,
            errors: { connect: 1, reset: 0 },
            mirror: { sent: 0, dropped: 0, failed: 0, skipped: 0 },
            warmReads: { sent: 4, completed: 3, dropped: 0, failed: 1 },
            backends: [
              {
                instance: 'kv-0',
                requests: 10,
                errors: 1,
                inFlight: 0,
                latency: { bounds: [0.001, 0.01], counts: [3, 5, 2], sum: 0.25, count: 10 },
              },
            ],
          },
        }),
      ],
    }));
    const body = (await t.exposition()).body;
    const h = 'understudy_router_request_duration_seconds';
    expect(value(body, `${h}_bucket{le="0.001",service="kv",instance="kv-0"}`)).toBe(3);
    expect(value(body, `${h}_bucket{le="0.01",service="kv",instance="kv-0"}`)).toBe(8);
    expect(value(body, `${h}_bucket{le="+Inf",service="kv",instance="kv-0"}`)).toBe(10);
    expect(value(body, `${h}_sum{service="kv",instance="kv-0"}`)).toBe(0.25);
    expect(value(body, `${h}_count{service="kv",instance="kv-0"}`)).toBe(10);
    expect(value(body, 'understudy_router_requests_total{service="kv"}')).toBe(10);
    expect(value(body, 'understudy_router_errors_total{service="kv",kind="connect"}')).toBe(1);
    expect(value(body, 'understudy_router_retries_total{service="kv"}')).toBe(2);
    expect(value(body, 'understudy_router_warm_reads_total{service="kv",outcome="sent"}')).toBe(4);
  });

  it('records promotions: the outcome counter and the detection and promotion histograms', async () => {
    const t = new Telemetry();
    t.promotion({
      service: 'kv',
      kind: 'failover',
      cause: 'crash',
      outcome: 'ok',
      detectionSeconds: 0.02,
      promotionSeconds: 0.3,
    });
    t.promotion({ service: 'kv', kind: 'failover', cause: 'hang', outcome: 'failed' });
    const body = (await t.exposition()).body;
    expect(value(body, 'understudy_failovers_total{service="kv",kind="failover",outcome="ok"}')).toBe(1);
    expect(value(body, 'understudy_failovers_total{service="kv",kind="failover",outcome="failed"}')).toBe(1);
    expect(
      value(body, 'understudy_failover_detection_seconds_bucket{le="0.025",service="kv",cause="crash"}'),
    ).toBe(1);
    expect(value(body, 'understudy_failover_detection_seconds_count{service="kv",cause="crash"}')).toBe(1);
    expect(
      value(body, 'understudy_failover_promotion_seconds_bucket{le="0.25",service="kv",kind="failover"}'),
    ).toBe(0);
    expect(
      value(body, 'understudy_failover_promotion_seconds_bucket{le="0.5",service="kv",kind="failover"}'),
    ).toBe(1);
    expect(body).not.toContain('cause="hang"');
  });

  it('counts decisions, and scaling actions only when applied', async () => {
    const t = new Telemetry();
    t.decision({ service: 'web', kind: 'scale-out', scalingApplied: true });
    t.decision({ service: 'web', kind: 'scale-out', scalingApplied: false });
    t.decision({ service: 'web', kind: 'start' });
    const body = (await t.exposition()).body;
    expect(value(body, 'understudy_decisions_total{service="web",kind="scale-out"}')).toBe(2);
    expect(value(body, 'understudy_decisions_total{service="web",kind="start"}')).toBe(1);
    expect(value(body, 'understudy_scaling_actions_total{service="web",action="scale-out"}')).toBe(1);
  });

  it('still answers when the sampler fails, without the collected metrics, and counts the failure', async () => {
    const t = new Telemetry();
    t.collectFrom(() => Promise.reject(new Error('store closed')));
    t.decision({ service: 'kv', kind: 'start' });
    const body = (await t.exposition()).body;
    expect(value(body, 'understudy_telemetry_sample_errors_total')).toBe(1);
    expect(value(body, 'understudy_decisions_total{service="kv",kind="start"}')).toBe(1);
    expect(body).not.toContain('understudy_service_epoch{');
  });

  it('describes every metric once, with its type and label names', () => {
    const metrics = new Telemetry().describe();
    expect(new Set(metrics.map((m) => m.name)).size).toBe(metrics.length);
    for (const m of metrics) {
      expect(m.name).toMatch(/^understudy_[a-z_]+$/);
      expect(m.name.endsWith('_total')).toBe(m.type === 'counter');
      expect(m.help.length).toBeGreaterThan(10);
    }
    expect(metrics.find((m) => m.name === 'understudy_instance_role')).toMatchObject({
      type: 'gauge',
      labels: ['service', 'instance', 'role'],
    });
  });
});
