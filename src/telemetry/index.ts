export { Telemetry } from './telemetry.js';
export type { Exposition, MetricDescription, TelemetrySource } from './telemetry.js';
export {
  METRICS_TABLE_BEGIN,
  METRICS_TABLE_END,
  metricsTable,
  parseMetricsTable,
  replaceMetricsTable,
} from './metrics-doc.js';
export type {
  BackendSample,
  DecisionObservation,
  EchoReplicationSample,
  FileSyncSample,
  InstanceSample,
  LatencySample,
  PromotionObservation,
  PromotionObserver,
  ReplicationSample,
  RouterSample,
  ScalingSample,
  ServiceSample,
  TelemetrySample,
} from './telemetry-sample.js';
