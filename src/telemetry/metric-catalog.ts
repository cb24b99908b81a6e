import { Counter, Histogram, type Registry } from 'prom-client';
import {
  sampledCounter,
  sampledGauge,
  SnapshotHistogram,
  type CurrentSample,
  type Emit,
  type Fill,
} from './sampled-metrics.js';
import type { ServiceSample, TelemetrySample } from './telemetry-sample.js';

/** Upper bounds of the failure-detection histogram, seconds. */
const DETECTION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upper bounds of the promotion histogram, seconds (sub-second is the goal). */
const PROMOTION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The metrics observed where things happen (not collected on scrape). */
export interface PushedMetrics {
  failovers: Counter;
  detection: Histogram;
  promotion: Histogram;
  decisions: Counter;
  scalingActions: Counter;
  sampleErrors: Counter;
}

/** Calls `fn` with each service of the sample and an emitter that adds its `service` label. */
function perService(fn: (svc: ServiceSample, emit: Emit) => void): Fill {
  return (sample: TelemetrySample, emit: Emit) => {
    for (const svc of sample.services)
      fn(svc, (labels, value) => emit({ service: svc.service, ...labels }, value));
  };
}

const bool = (b: boolean): number => (b ? 1 : 0);

/**
 * Creates every metric of Understudy in `registry`. The collected ones read `current()` (the sample
 * taken for the scrape under way); the pushed ones are returned for the observers to update.
 */
export function defineMetrics(registry: Registry, current: CurrentSample): PushedMetrics {
  const gauge = (name: string, help: string, labelNames: readonly string[], fill: Fill): void =>
    void sampledGauge(registry, current, { name, help, labelNames }, fill);
  const counter = (name: string, help: string, labelNames: readonly string[], fill: Fill): void =>
    void sampledCounter(registry, current, { name, help, labelNames }, fill);
  const svc = ['service'];
  const inst = ['service', 'instance'];
  const instRole = ['service', 'instance', 'role'];

  // Services and instances.
  gauge(
    'understudy_service_epoch',
    'Fencing epoch of the service (raised by every promotion).',
    svc,
    perService((s, emit) => emit({}, s.epoch)),
  );
  gauge(
    'understudy_service_degraded',
    '1 from a failover until a replacement echo is in sync again, else 0.',
    svc,
    perService((s, emit) => emit({}, bool(s.degraded))),
  );
  gauge(
    'understudy_service_paused',
    "1 while the service is paused (maintenance mode: no automatic failover or scaling, 'understudy pause'), else 0.",
    svc,
    perService((s, emit) => emit({}, bool(s.paused === true))),
  );
  gauge(
    'understudy_service_desired_instances',
    'Instances wanted per role (the spec, or the autoscaler for a scaled service).',
    ['service', 'role'],
    perService((s, emit) => {
      for (const [role, n] of Object.entries(s.desired)) emit({ role }, n);
    }),
  );
  gauge(
    'understudy_serving_instances',
    "Instances serving traffic (the router's serving set).",
    svc,
    perService((s, emit) => emit({}, s.serving)),
  );
  gauge(
    'understudy_warm_pool_instances',
    'Echoes standing by to take over or to serve (running, starting, or cold in standby).',
    svc,
    perService((s, emit) => emit({}, s.warmPool)),
  );
  gauge(
    'understudy_instance_role',
    '1 for every instance not stopped, labelled with its role (primary, echo, shadow).',
    instRole,
    perService((s, emit) => {
      for (const i of s.instances) emit({ instance: i.instance, role: i.role }, 1);
    }),
  );
  gauge(
    'understudy_instance_phase',
    '1 for the lifecycle phase each instance is in (starting, running, unhealthy, exited, failed, fenced, standby).',
    [...instRole, 'phase'],
    perService((s, emit) => {
      for (const i of s.instances) emit({ instance: i.instance, role: i.role, phase: i.phase }, 1);
    }),
  );
  gauge(
    'understudy_instance_epoch',
    'Epoch of the service when the instance last became primary.',
    instRole,
    perService((s, emit) => {
      for (const i of s.instances) emit({ instance: i.instance, role: i.role }, i.epoch);
    }),
  );
  gauge(
    'understudy_instance_healthy',
    '1 when the last health check of the instance passed, 0 when it failed (absent before the first verdict).',
    instRole,
    perService((s, emit) => {
      for (const i of s.instances)
        if (i.healthy !== undefined) emit({ instance: i.instance, role: i.role }, bool(i.healthy));
    }),
  );
  gauge(
    'understudy_migration_readiness_score',
    'Migration readiness score of a primary, 0..100 (services with migration.auto).',
    instRole,
    perService((s, emit) => {
      for (const i of s.instances)
        if (i.readiness !== undefined) emit({ instance: i.instance, role: i.role }, i.readiness);
    }),
  );

  // Router.
  counter(
    'understudy_router_requests_total',
    'Requests (TCP mode: connections) the router accepted.',
    svc,
    perService((s, emit) => s.router && emit({}, s.router.requests)),
  );
  gauge(
    'understudy_router_in_flight_requests',
    'Requests (TCP mode: connections) in flight through the router.',
    svc,
    perService((s, emit) => s.router && emit({}, s.router.inFlight)),
  );
  gauge(
    'understudy_router_waiting_requests',
    'Requests (TCP mode: connections) waiting for a backend.',
    svc,
    perService((s, emit) => s.router && emit({}, s.router.waiting)),
  );
  counter(
    'understudy_router_unavailable_total',
    'Requests answered 503 (TCP mode: connections closed) for want of a backend.',
    svc,
    perService((s, emit) => s.router && emit({}, s.router.unavailable)),
  );
  counter(
    'understudy_router_retries_total',
    'Requests (connections) re-sent to a backend after a failure or a refused connect.',
    svc,
    perService((s, emit) => s.router && emit({}, s.router.retried)),
  );
  counter(
    'understudy_router_errors_total',
    'Requests (connections) that failed, by kind.',
    ['service', 'kind'],
    perService((s, emit) => {
      for (const [kind, n] of Object.entries(s.router?.errors ?? {})) emit({ kind }, n);
    }),
  );
  counter(
    'understudy_router_bytes_total',
    'Bytes through the router in TCP mode, by direction (in: from clients, out: to clients).',
    ['service', 'direction'],
    perService((s, emit) => {
      if (s.router?.bytes)
        for (const [direction, n] of Object.entries(s.router.bytes)) emit({ direction }, n);
    }),
  );
  counter(
    'understudy_router_mirrored_requests_total',
    'Copies of live requests for shadows, by outcome (sent, dropped, failed, skipped).',
    ['service', 'outcome'],
    perService((s, emit) => {
      for (const [outcome, n] of Object.entries(s.router?.mirror ?? {})) emit({ outcome }, n);
    }),
  );
  counter(
    'understudy_router_warm_reads_total',
    'Copies of live reads sent to warm-pool echoes to warm their caches (echo.warmReads), by outcome (sent, completed, dropped, failed): the cost of warming.',
    ['service', 'outcome'],
    perService((s, emit) => {
      for (const [outcome, n] of Object.entries(s.router?.warmReads ?? {})) emit({ outcome }, n);
    }),
  );
  counter(
    'understudy_router_backend_requests_total',
    'Requests (connections) the router sent to each instance.',
    inst,
    perService((s, emit) => {
      for (const b of s.router?.backends ?? []) emit({ instance: b.instance }, b.requests);
    }),
  );
  counter(
    'understudy_router_backend_errors_total',
    'Requests (connections) to each instance that failed.',
    inst,
    perService((s, emit) => {
      for (const b of s.router?.backends ?? []) emit({ instance: b.instance }, b.errors);
    }),
  );
  gauge(
    'understudy_router_backend_in_flight_requests',
    'Requests (connections) in flight to each instance.',
    inst,
    perService((s, emit) => {
      for (const b of s.router?.backends ?? []) emit({ instance: b.instance }, b.inFlight);
    }),
  );
  new SnapshotHistogram(
    registry,
    current,
    {
      name: 'understudy_router_request_duration_seconds',
      help: 'Time from forwarding a request to an instance to its response head (TCP: connect time).',
      labelNames: inst,
    },
    (sample, emit) => {
      for (const s of sample.services)
        for (const b of s.router?.backends ?? [])
          emit({ service: s.service, instance: b.instance }, b.latency);
    },
  );

  // Replication (hot echoes).
  gauge(
    'understudy_replication_last_sequence',
    'Sequence number of the last mutation logged by the router.',
    svc,
    perService((s, emit) => s.replication && emit({}, s.replication.lastSeq)),
  );
  counter(
    'understudy_replication_strict_refusals_total',
    'Writes not acknowledged because no echo applied them in time (write-through, strict).',
    svc,
    perService((s, emit) => s.replication && emit({}, s.replication.strictRefusals)),
  );
  gauge(
    'understudy_replication_in_sync',
    '1 while the echo is in the synchronous set, else 0.',
    inst,
    perService((s, emit) => {
      for (const e of s.replication?.echoes ?? []) emit({ instance: e.instance }, bool(e.inSync));
    }),
  );
  gauge(
    'understudy_replication_lag_mutations',
    'Mutations logged but not yet applied on the echo.',
    inst,
    perService((s, emit) => {
      for (const e of s.replication?.echoes ?? []) emit({ instance: e.instance }, e.lagMutations);
    }),
  );
  gauge(
    'understudy_replication_lag_seconds',
    'Age of the oldest mutation not yet applied on the echo (0 when caught up).',
    inst,
    perService((s, emit) => {
      for (const e of s.replication?.echoes ?? []) emit({ instance: e.instance }, e.lagSeconds);
    }),
  );
  counter(
    'understudy_replication_applied_total',
    'Mutations applied on the echo.',
    inst,
    perService((s, emit) => {
      for (const e of s.replication?.echoes ?? []) emit({ instance: e.instance }, e.applied);
    }),
  );
  counter(
    'understudy_replication_failures_total',
    'Failed replays of a mutation on the echo (each is retried).',
    inst,
    perService((s, emit) => {
      for (const e of s.replication?.echoes ?? []) emit({ instance: e.instance }, e.failures);
    }),
  );

  // File-state sync (warm and cold echoes).
  gauge(
    'understudy_file_sync_connected',
    '1 while the sync connection to the echo is up, else 0.',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, bool(f.connected));
    }),
  );
  gauge(
    'understudy_file_sync_lag_seconds',
    'Age of the oldest file change not yet applied on the echo (0 when caught up).',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.lagSeconds);
    }),
  );
  gauge(
    'understudy_file_sync_lag_bytes',
    'Bytes sent or being sent to the echo and not yet acknowledged.',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.lagBytes);
    }),
  );
  gauge(
    'understudy_external_echo_lag_bytes',
    'Replication lag of an external echo as its lag hook last reported it (no sample while unknown).',
    inst,
    perService((s, emit) => {
      for (const e of s.externalEchoes ?? [])
        if (e.lagBytes !== undefined) emit({ instance: e.instance }, e.lagBytes);
    }),
  );
  counter(
    'understudy_file_sync_wire_bytes_total',
    'Bytes written to the wire to the echo (frames and every overhead).',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.wireBytes);
    }),
  );
  gauge(
    'understudy_file_sync_change_bytes_per_second',
    "Changed bytes per second in the primary's state directory (10 s window).",
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.changeRateBytes);
    }),
  );
  gauge(
    'understudy_file_sync_compression_ratio',
    'Uncompressed over compressed payload bytes sent to the echo (1: nothing compressed).',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.compressionRatio);
    }),
  );
  counter(
    'understudy_file_sync_errors_total',
    'Sync errors with the echo (each is retried).',
    inst,
    perService((s, emit) => {
      for (const f of s.fileSync ?? []) emit({ instance: f.instance }, f.errors);
    }),
  );

  // Predictive scaling.
  gauge(
    'understudy_scaling_load_requests_per_second',
    "Requests per second through the service's router, last sample.",
    svc,
    perService((s, emit) => s.scaling && emit({}, s.scaling.load)),
  );
  gauge(
    'understudy_scaling_capacity_requests_per_second',
    'Requests per second one serving instance handles at 100 % (set or measured).',
    svc,
    perService((s, emit) => s.scaling?.capacity !== undefined && emit({}, s.scaling.capacity)),
  );
  gauge(
    'understudy_scaling_target_ratio',
    'Target utilisation of a serving instance, 0..1.',
    svc,
    perService((s, emit) => s.scaling && emit({}, s.scaling.target)),
  );
  gauge(
    'understudy_scaling_forecast_requests_per_second',
    'Forecast load at the forecast horizon: its point (mean) and interval (lower, upper).',
    ['service', 'bound'],
    perService((s, emit) => {
      const f = s.scaling?.forecast;
      if (f) for (const bound of ['mean', 'lower', 'upper'] as const) emit({ bound }, f[bound]);
    }),
  );
  gauge(
    'understudy_scaling_forecast_horizon_seconds',
    'How far ahead the forecast looks.',
    svc,
    perService((s, emit) => s.scaling?.forecast && emit({}, s.scaling.forecast.horizonSeconds)),
  );
  gauge(
    'understudy_scaling_confidence_ratio',
    'Confidence of the prediction, 0..1.',
    svc,
    perService((s, emit) => s.scaling?.confidence !== undefined && emit({}, s.scaling.confidence)),
  );
  gauge(
    'understudy_shadow_delta_ratio',
    'Shadow signal: (shadow − live) / live of the normalised CPU load; positive when the shadow says traffic costs more.',
    svc,
    perService((s, emit) => s.scaling?.shadowDelta !== undefined && emit({}, s.scaling.shadowDelta)),
  );

  // The control loop.
  gauge(
    'understudy_control_event_loop_delay_seconds',
    'Event-loop delay of the control process (the data plane runs on this loop), by statistic (p50, p99, max).',
    ['stat'],
    (sample, emit) => {
      const d = sample.eventLoopDelay;
      if (d) for (const stat of ['p50', 'p99', 'max'] as const) emit({ stat }, d[stat]);
    },
  );

  // Observed where they happen.
  const registers = [registry];
  return {
    failovers: new Counter({
      name: 'understudy_failovers_total',
      help: 'Promotions of an echo, by kind (failover, switchover) and outcome (ok, failed).',
      labelNames: ['service', 'kind', 'outcome'],
      registers,
    }),
    detection: new Histogram({
      name: 'understudy_failover_detection_seconds',
      help: 'Time from a primary failing (its exit) to the failure being detected.',
      labelNames: ['service', 'cause'],
      buckets: DETECTION_BUCKETS,
      registers,
    }),
    promotion: new Histogram({
      name: 'understudy_failover_promotion_seconds',
      help: 'Time from detection (or request) to the promoted echo serving.',
      labelNames: ['service', 'kind'],
      buckets: PROMOTION_BUCKETS,
      registers,
    }),
    decisions: new Counter({
      name: 'understudy_decisions_total',
      help: 'Decisions the control loop recorded, by kind (see understudy events).',
      labelNames: ['service', 'kind'],
      registers,
    }),
    scalingActions: new Counter({
      name: 'understudy_scaling_actions_total',
      help: 'Scaling actions carried out (scale-out, scale-in, pool-resize, resize).',
      labelNames: ['service', 'action'],
      registers,
    }),
    sampleErrors: new Counter({
      name: 'understudy_telemetry_sample_errors_total',
      help: 'Scrapes whose sample of the control plane failed (the collected metrics were left out).',
      registers,
    }),
  };
}
