import { Registry } from 'prom-client';
import { defineMetrics, type PushedMetrics } from './metric-catalog.js';
import type {
  DecisionObservation,
  PromotionObservation,
  PromotionObserver,
  TelemetrySample,
} from './telemetry-sample.js';

/** Where a scrape reads the collected metrics from: the control plane's sampler. */
export type TelemetrySource = () => TelemetrySample | Promise<TelemetrySample>;

/** One metric of the registry, as docs/metrics.md lists it. */
export interface MetricDescription {
  name: string;
  type: string;
  labels: string[];
  help: string;
}

/** A Prometheus text exposition and its content type. */
export interface Exposition {
  contentType: string;
  body: string;
}

/**
 * The metrics of one control plane: a prom-client registry of its own (no global), filled on every
 * scrape from one {@link TelemetrySample} its source takes then (collect-on-scrape: nothing is pushed
 * from a hot path), plus the few things observed where they happen (promotions, decisions).
 */
export class Telemetry implements PromotionObserver {
  readonly registry = new Registry();
  readonly #pushed: PushedMetrics;
  #source: TelemetrySource | undefined;
  #current: TelemetrySample | undefined;
  /** Scrapes run one at a time: each one's collectors read its own sample. */
  #scrapes: Promise<unknown> = Promise.resolve();

  constructor() {
    this.#pushed = defineMetrics(this.registry, () => this.#current);
  }

  /** Sets the sampler every scrape reads (replacing any earlier one). */
  collectFrom(source: TelemetrySource): void {
    this.#source = source;
  }

  /** Records one promotion: its outcome, and the detection and promotion durations it measured. */
  promotion(o: PromotionObservation): void {
    this.#pushed.failovers.inc({ service: o.service, kind: o.kind, outcome: o.outcome });
    if (o.detectionSeconds !== undefined && Number.isFinite(o.detectionSeconds))
      this.#pushed.detection.observe({ service: o.service, cause: o.cause }, o.detectionSeconds);
    if (o.promotionSeconds !== undefined && Number.isFinite(o.promotionSeconds))
      this.#pushed.promotion.observe({ service: o.service, kind: o.kind }, o.promotionSeconds);
  }

  /** Counts one new decision of the control loop, and a scaling action when it is one that was applied. */
  decision(d: DecisionObservation): void {
    this.#pushed.decisions.inc({ service: d.service, kind: d.kind });
    if (d.scalingApplied) this.#pushed.scalingActions.inc({ service: d.service, action: d.kind });
  }

  /**
   * Samples the source once and renders every metric in the Prometheus text format. A failing sampler
   * does not fail the scrape: the collected metrics are left out, and
   * `understudy_telemetry_sample_errors_total` counts it.
   */
  exposition(): Promise<Exposition> {
    const run = this.#scrapes.then(async () => {
      try {
        this.#current = this.#source ? await this.#source() : undefined;
      } catch {
        this.#current = undefined;
        this.#pushed.sampleErrors.inc();
      }
      try {
        return { contentType: this.registry.contentType, body: await this.registry.metrics() };
      } finally {
        this.#current = undefined;
      }
    });
    this.#scrapes = run.catch(() => undefined);
    return run;
  }

  /** Every metric of the registry (name, type, label names, help), sorted by name. */
  describe(): MetricDescription[] {
    return this.registry
      .getMetricsAsArray()
      .map((m) => {
        const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
        // prom-client types `type` as a numeric enum; at run time it is the exposition's word.
        return { name: m.name, type: String(m.type as unknown), labels: [...labels], help: m.help };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
