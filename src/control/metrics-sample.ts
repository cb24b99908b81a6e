import type { LatencySnapshot, RouterStats } from '../router/index.js';
import { LATENCY_BUCKETS_MS } from '../router/index.js';
import type {
  DecisionObservation,
  InstanceSample,
  LatencySample,
  RouterSample,
  ServiceSample,
  Telemetry,
  TelemetrySample,
} from '../telemetry/index.js';
import type { DecisionLog } from './decision-log.js';
import type { InstanceRecord } from './records.js';
import type { ServiceView } from './service-view.js';

/** What the sample reads besides the service views (what {@link metricsSample} needs). */
export interface MetricsSampleParts {
  /** The full stats of a service's router (undefined: the service has none). */
  router: (service: string) => RouterStats | undefined;
  /** Last migration readiness score of a primary (undefined: not sampled). */
  readiness: (instance: string) => number | undefined;
  /** Event-loop delay of the control process, ms. */
  eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
}

/** Decision kinds that are scaling actions (the autoscaler records them `ok` when applied). */
const SCALING_ACTIONS = new Set(['scale-out', 'scale-in', 'pool-resize', 'resize']);
/** Phases in which an echo stands by. */
const STANDING_BY = new Set(['running', 'starting', 'standby']);

const BOUNDS_SECONDS = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);

function latency(l: LatencySnapshot): LatencySample {
  return { bounds: BOUNDS_SECONDS, counts: l.buckets, sum: l.sumMs / 1000, count: l.count };
}

function routerSample(stats: RouterStats): RouterSample {
  const { http, tcp } = stats;
  const backends = stats.backends.map((b) => ({
    instance: b.id,
    requests: b.requests,
    errors: b.errors,
    inFlight: b.inFlight,
    latency: latency(b.latency),
  }));
  const m = stats.mirror;
  const mirror = { sent: m.sent, dropped: m.dropped, failed: m.failed, skipped: m.skippedBody };
  const w = stats.warmReads;
  const warmReads = { sent: w.sent, completed: w.completed, dropped: w.dropped, failed: w.failed };
  const common = { mode: stats.mode, waiting: stats.waiting, mirror, warmReads, backends };
  if (http)
    return {
      ...common,
      requests: http.requests,
      inFlight: http.inFlight,
      unavailable: http.unavailable,
      retried: http.retries + http.redispatched,
      errors: http.errors,
    };
  return {
    ...common,
    requests: tcp?.connections ?? 0,
    inFlight: tcp?.active ?? 0,
    unavailable: tcp?.unavailable ?? 0,
    retried: tcp?.redispatched ?? 0,
    errors: { connect: tcp?.connectErrors ?? 0, reset: tcp?.resets ?? 0 },
    bytes: { in: tcp?.bytesIn ?? 0, out: tcp?.bytesOut ?? 0 },
  };
}

function instanceSample(rec: InstanceRecord, readiness: number | undefined): InstanceSample {
  return {
    instance: rec.id,
    role: rec.role,
    phase: rec.phase,
    epoch: rec.epoch,
    ...(rec.health ? { healthy: rec.health.healthy } : {}),
    ...(readiness !== undefined ? { readiness } : {}),
  };
}

function serviceSample(view: ServiceView, parts: MetricsSampleParts): ServiceSample {
  const stats = parts.router(view.name);
  const running = view.instances.filter((i) => i.role === 'primary' && i.phase === 'running').length;
  const s = view.scaling;
  const f = s?.forecast;
  const replication = view.dataPlane?.replication;
  return {
    service: view.name,
    epoch: view.epoch,
    degraded: view.degraded,
    paused: view.paused !== undefined,
    desired: { primary: view.desired.primaries, echo: view.desired.echoes, shadow: view.desired.shadows },
    serving: stats ? stats.serving.length : running,
    warmPool: view.instances.filter((i) => i.role === 'echo' && STANDING_BY.has(i.phase)).length,
    instances: view.instances.map((i) =>
      instanceSample(i, i.role === 'primary' ? parts.readiness(i.id) : undefined),
    ),
    ...(stats ? { router: routerSample(stats) } : {}),
    ...(replication
      ? {
          replication: {
            lastSeq: replication.lastSeq,
            strictRefusals: replication.strictRefusals,
            echoes: replication.echoes.map((e) => ({
              instance: e.instanceId,
              inSync: e.inSync,
              lagMutations: e.pending,
              lagSeconds: e.lagMs / 1000,
              applied: e.applied,
              failures: e.failures,
            })),
          },
        }
      : {}),
    ...(view.externalEchoes
      ? {
          externalEchoes: view.externalEchoes.map((e) => ({
            instance: e.instance,
            ...(e.error === undefined && e.lagBytes !== undefined ? { lagBytes: e.lagBytes } : {}),
          })),
        }
      : {}),
    ...(view.fileSync
      ? {
          fileSync: view.fileSync.map((e) => ({
            instance: e.echo,
            connected: e.connected,
            lagSeconds: e.lagSeconds,
            lagBytes: e.lagBytes,
            wireBytes: e.wireBytes,
            changeRateBytes: e.changeRateBytesPerSec,
            compressionRatio: e.compressionRatio,
            errors: e.errors,
          })),
        }
      : {}),
    ...(s
      ? {
          scaling: {
            load: s.load,
            target: s.target,
            ...(s.capacity ? { capacity: s.capacity.perInstance } : {}),
            ...(f
              ? {
                  forecast: {
                    mean: f.mean,
                    lower: f.lower,
                    upper: f.upper,
                    horizonSeconds: f.horizonMs / 1000,
                  },
                }
              : {}),
            ...(s.confidence !== undefined ? { confidence: s.confidence } : {}),
            ...(s.shadow ? { shadowDelta: s.shadow.delta } : {}),
          },
        }
      : {}),
  };
}

/** The telemetry sample of the control plane: its service views and its parts' stats, seconds and bytes. */
export function metricsSample(views: readonly ServiceView[], parts: MetricsSampleParts): TelemetrySample {
  const d = parts.eventLoopDelay;
  return {
    services: views.map((v) => serviceSample(v, parts)),
    eventLoopDelay: { p50: d.p50Ms / 1000, p99: d.p99Ms / 1000, max: d.maxMs / 1000 },
  };
}

/**
 * Feeds `telemetry` every new decision of `decisions` (a settled decision, reported again, is not
 * counted twice); returns the unsubscribe function.
 */
export function countDecisions(telemetry: Telemetry, decisions: Pick<DecisionLog, 'subscribe'>): () => void {
  let last = 0;
  return decisions.subscribe((d) => {
    if (d.seq <= last) return;
    last = d.seq;
    const o: DecisionObservation = {
      service: d.service,
      kind: d.kind,
      ...(SCALING_ACTIONS.has(d.kind)
        ? { scalingApplied: d.outcome.status !== 'recorded' && d.outcome.status !== 'skipped' }
        : {}),
    };
    telemetry.decision(o);
  });
}

/** What {@link observeControlPlane} samples on every scrape. */
export interface MetricsSources {
  services: () => Promise<ServiceView[]>;
  router: MetricsSampleParts['router'];
  readiness: MetricsSampleParts['readiness'];
  eventLoopDelay: () => MetricsSampleParts['eventLoopDelay'];
}

/**
 * Makes `telemetry` sample a control plane on every scrape (its service views and the stats of its
 * parts) and count its decisions as they are recorded.
 */
export function observeControlPlane(
  telemetry: Telemetry,
  decisions: Pick<DecisionLog, 'subscribe'>,
  sources: MetricsSources,
): void {
  telemetry.collectFrom(async () =>
    metricsSample(await sources.services(), {
      router: sources.router,
      readiness: sources.readiness,
      eventLoopDelay: sources.eventLoopDelay(),
    }),
  );
  countDecisions(telemetry, decisions);
}
