import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LatencySample, TelemetrySample } from './telemetry-sample.js';

/** Label values of one series. */
export type Labels = Record<string, string | number>;
/** Emits one series' value while a metric is being collected. */
export type Emit = (labels: Labels, value: number) => void;
/** Reads the series of one metric from a sample. */
export type Fill = (sample: TelemetrySample, emit: Emit) => void;
/** The sample of the scrape under way (undefined outside a scrape, or when sampling failed). */
export type CurrentSample = () => TelemetrySample | undefined;

/** What every metric definition names: its name, help text and label names. */
export interface MetricSpec {
  name: string;
  help: string;
  labelNames: readonly string[];
}

/**
 * A gauge collected on scrape: its series are exactly those `fill` emits from the current sample (a
 * series whose instance is gone disappears with it). Non-finite values are left out.
 */
export function sampledGauge(
  registry: Registry,
  current: CurrentSample,
  spec: MetricSpec,
  fill: Fill,
): Gauge {
  return new Gauge(
    onScrape(registry, current, spec, fill, (metric: Gauge, labels, value) => {
      if (Number.isFinite(value)) metric.set(labels, value);
    }),
  );
}

/**
 * A counter collected on scrape from a cumulative count the sampler already keeps (the router's
 * request count, bytes on the wire). A count that restarts (a new router, a re-added echo) is a counter
 * reset, which `rate()` handles. Negative and non-finite values are left out.
 */
export function sampledCounter(
  registry: Registry,
  current: CurrentSample,
  spec: MetricSpec,
  fill: Fill,
): Counter {
  return new Counter(
    onScrape(registry, current, spec, fill, (metric: Counter, labels, value) => {
      if (Number.isFinite(value) && value >= 0) metric.inc(labels, value);
    }),
  );
}

/**
 * The configuration of a metric whose series are reset and refilled from the current sample on every
 * scrape: `put` records one series `fill` emits.
 */
function onScrape<M extends { reset(): void }>(
  registry: Registry,
  current: CurrentSample,
  spec: MetricSpec,
  fill: Fill,
  put: (metric: M, labels: Labels, value: number) => void,
): MetricSpec & { labelNames: string[]; registers: Registry[]; collect(this: M): void } {
  return {
    ...spec,
    labelNames: [...spec.labelNames],
    registers: [registry],
    collect(this: M) {
      this.reset();
      const sample = current();
      if (!sample) return;
      fill(sample, (labels, value) => put(this, labels, value));
    },
  };
}

/** One series of a {@link SnapshotHistogram}. */
export type EmitHistogram = (labels: Labels, latency: LatencySample) => void;

/** prom-client's internal value row (what `Registry` formats). */
interface ValueRow {
  metricName: string;
  labels: Labels;
  sharedLabels: Labels;
  value: number;
}

/**
 * A histogram collected on scrape from fixed-bucket histograms a sampler already keeps (the router's
 * per-backend latency), rather than observed again on the hot path. It overrides prom-client's
 * `getForPromString` (what the registry formats) to expose the snapshot's buckets as they are.
 */
export class SnapshotHistogram extends Histogram {
  readonly #spec: MetricSpec;
  readonly #current: CurrentSample;
  readonly #fill: (sample: TelemetrySample, emit: EmitHistogram) => void;

  constructor(
    registry: Registry,
    current: CurrentSample,
    spec: MetricSpec,
    fill: (sample: TelemetrySample, emit: EmitHistogram) => void,
  ) {
    super({ ...spec, labelNames: [...spec.labelNames], registers: [registry] });
    this.#spec = spec;
    this.#current = current;
    this.#fill = fill;
  }

  /** The exposition rows: cumulative `_bucket` rows per bound and `+Inf`, then `_sum` and `_count`. */
  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: ValueRow[];
    aggregator: 'sum';
  }> {
    const values: ValueRow[] = [];
    const sample = this.#current();
    const { name, help } = this.#spec;
    if (sample) {
      this.#fill(sample, (labels, h) => {
        let acc = 0;
        h.bounds.forEach((le, i) => {
          acc += h.counts[i] ?? 0;
          values.push({ metricName: `${name}_bucket`, labels: { le }, sharedLabels: labels, value: acc });
        });
        values.push(
          { metricName: `${name}_bucket`, labels: { le: '+Inf' }, sharedLabels: labels, value: h.count },
          { metricName: `${name}_sum`, labels: {}, sharedLabels: labels, value: h.sum },
          { metricName: `${name}_count`, labels: {}, sharedLabels: labels, value: h.count },
        );
      });
    }
    return { name, help, type: 'histogram', values, aggregator: 'sum' };
  }
}
